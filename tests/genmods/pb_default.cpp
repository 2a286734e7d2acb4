// pb_default: a pybind11 module as most projects write it: PYBIND11_MODULE without options.
// pybind11 3.x declares it Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED, so an isolated
// interpreter refuses it; the fix is py::multiple_interpreters::per_interpreter_gil().
#include <pybind11/pybind11.h>

PYBIND11_MODULE(pb_default, m) {
    m.def("add", [](int a, int b) { return a + b; });
}
