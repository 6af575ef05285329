"""careline side-by-side benchmark suite. Run: python -m bench --help"""
