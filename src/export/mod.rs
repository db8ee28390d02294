//! Trained-model export (issue 4 fills this in).
