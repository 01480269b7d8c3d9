namespace Unlearnable.Data;

/// <summary>
/// A folder holds a run (training, protection) made with other settings, so resuming it would mix the two: the user
/// chooses another folder or the same settings. A user's mistake, not a bug.
/// </summary>
public sealed class RunConflictException(string message) : Exception(message);
