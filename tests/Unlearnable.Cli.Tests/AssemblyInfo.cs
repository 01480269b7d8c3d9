// torch's random generator is process-wide: tests that seed it and then build or train a model
// must not interleave with other tests drawing from it, so this assembly runs its tests one at a time
// (which also keeps the command lines the tests start from training side by side on the same cores).
[assembly: CollectionBehavior(DisableTestParallelization = true)]
