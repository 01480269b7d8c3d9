// Every test class starts real servers that share libtorch's global state and the CPU: run them one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
