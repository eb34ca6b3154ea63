//! One module per rule, R1–R8 of RULES.md. PLACEHOLDER: being written.
