"""Reading traces to measure them: one loader for every trace kind (load), sessions of rows
without ids (chains), a trace's figures and two traces side by side (compare), and a `.trace`
program that resembles a trace (fit)."""
