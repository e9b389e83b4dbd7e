//! ecco-attrib (in progress).
