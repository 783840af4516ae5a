//! `build`: the engine side of the builder. (Being written.)
