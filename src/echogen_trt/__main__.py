"""`python -m echogen_trt` (and `torchrun -m echogen_trt train ...`) runs the CLI."""

from echogen_trt.cli import main

if __name__ == "__main__":
    main()
