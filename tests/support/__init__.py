"""What only the tests use: data they write themselves (datafactory), a plugin that pretends a CUDA
device (pretend_cuda: `pytest -p support.pretend_cuda`)."""
