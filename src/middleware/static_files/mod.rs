//! Static files (being written).
