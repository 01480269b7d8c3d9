// torch's random generator is process-wide: tests that seed it and then build or train a model
// must not interleave with other tests drawing from it, so this assembly runs its tests one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
