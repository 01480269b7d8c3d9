// Every test starts a real host whose jobs train models on the CPU: run them one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
