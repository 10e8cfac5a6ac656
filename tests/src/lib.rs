//! Integration tests of the workspace live in `tests/`; subprocess scenarios in `src/bin/`.
