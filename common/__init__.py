"""Plumbing every room shares, torch-free and importing no other room: one-line errors and the CLI
command class (errors), atomic writes and run folders (fileio), bounded image and file reads (safeio),
the limits on untrusted input (limits), and CPU facts (cpu)."""
