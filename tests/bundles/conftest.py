from .test_liver3d import dataset, trained  # noqa: F401  (module fixtures shared by the bundle tests)
