//! ecco-factor (in progress).
