//! ecco-viz (in progress).
