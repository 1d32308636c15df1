//! Placeholder: filled in by the examples work.
