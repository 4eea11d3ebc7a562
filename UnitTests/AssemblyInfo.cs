// libtorch keeps process-wide state (default dtype, grad mode, thread pools): run tests one at a time.
[assembly: Microsoft.VisualStudio.TestTools.UnitTesting.DoNotParallelize]
