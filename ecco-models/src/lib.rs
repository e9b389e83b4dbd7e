//! ecco-models (in progress).
