//! The meshup policy SDK.
