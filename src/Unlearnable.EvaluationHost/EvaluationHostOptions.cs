namespace Unlearnable.EvaluationHost;

/// <summary>The "Evaluation" configuration section.</summary>
public sealed class EvaluationHostOptions
{
    /// <summary>Holds jobs.db and one output folder per job (jobs/ID); relative spec paths resolve here.</summary>
    public string DataDirectory { get; set; } = "data/evaluation";

    /// <summary>auto, cpu or cuda[:N]: the one device jobs run on, one at a time.</summary>
    public string Device { get; set; } = "auto";

    public string DatabasePath => Path.Combine(Path.GetFullPath(DataDirectory), "jobs.db");
    public string JobFolder(string jobId) => Path.Combine(Path.GetFullPath(DataDirectory), "jobs", jobId);
}
