//! Containers: create, start, stop, remove, and everything in between. (Being written.)
