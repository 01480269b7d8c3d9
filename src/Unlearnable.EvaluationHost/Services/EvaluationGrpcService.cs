using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Options;
using Unlearnable.Contracts.V1;
using Unlearnable.Evaluation;
using Unlearnable.EvaluationHost.Jobs;
using Unlearnable.Hosting;

namespace Unlearnable.EvaluationHost.Services;

/// <summary>
/// The gRPC face of the job queue, each call within its key's tenant (<see cref="ApiKeyInterceptor.Tenant"/>): another
/// tenant's job is NOT_FOUND, as if it never was. Thin over <see cref="JobStore"/>, <see cref="SpecAdmission"/>, <see cref="JobWorker"/>, <see cref="JobEvents"/> and <see cref="JobRetention"/>.
/// </summary>
public sealed class EvaluationGrpcService(JobStore store, SpecAdmission admission, JobWorker worker, JobEvents events, JobRetention retention, DiskFloor disk,
    IOptions<EvaluationHostOptions> options)
    : EvaluationService.EvaluationServiceBase
{
    const int MaxSpecBytes = 64 * 1024;

    public override Task<Job> StartJob(StartJobRequest request, ServerCallContext context)
    {
        if (request.SpecJson.Length == 0) throw Invalid([new SpecViolation("spec_json", "is empty; send an attack spec (see examples/attacks/)")]);
        if (request.SpecJson.Length > MaxSpecBytes) throw Invalid([new SpecViolation("spec_json", $"is {request.SpecJson.Length} characters; the limit is {MaxSpecBytes}")]);
        AttackSpec spec;
        try { spec = AttackSpec.Parse(request.SpecJson); }
        catch (SpecException e) { throw Invalid(e.Violations); }
        // Checked now, as the worker will, so a bad spec never reaches the queue.
        var (_, problems) = admission.Admit(spec);
        if (problems.Count > 0) throw Invalid(problems);
        if (disk.Shortfall() is { } full) throw new RpcException(new Grpc.Core.Status(StatusCode.ResourceExhausted, $"no job is queued now: {full}"));
        int most = options.Value.MaxActiveJobsPerTenant;
        var job = store.Add(ApiKeyInterceptor.Tenant(context), spec.Name, spec.ToJson(), most)
            ?? throw new RpcException(new Grpc.Core.Status(StatusCode.ResourceExhausted,
                $"this API key's tenant already has {most} jobs queued or running, its share (Evaluation:MaxActiveJobsPerTenant); wait for one to end or cancel one"));
        worker.Wake();
        return Task.FromResult(job);
    }

    public override async Task WatchJob(WatchJobRequest request, IServerStreamWriter<JobEvent> stream, ServerCallContext context)
    {
        Find(context, request.JobId);                               // a made-up id is refused before anything is kept for it
        using var subscription = events.Subscribe(request.JobId);   // then the state, so no event falls in between
        var job = Find(context, request.JobId);
        await stream.WriteAsync(job.LastEvent ?? new JobEvent { JobId = job.JobId, State = job.State, Phase = job.State.ToString().ToLowerInvariant(), Message = "queued" });
        if (Ended(job.State)) return;
        try
        {
            await foreach (var e in subscription.Reader.ReadAllAsync(context.CancellationToken))
            {
                await stream.WriteAsync(e);
                if (Ended(e.State) || e.State == JobState.Queued) return;
            }
        }
        catch (WatcherFellBehindException e)
        {
            throw new RpcException(new Grpc.Core.Status(StatusCode.ResourceExhausted, e.Message));
        }
    }

    public override async Task<Job> GetJob(GetJobRequest request, ServerCallContext context)
    {
        var job = Find(context, request.JobId);
        if (job.State == JobState.Succeeded && await JobVerdicts.Read(options.Value.JobFolder(job.JobId), context.CancellationToken) is { } verdict) job.Verdict = verdict;
        return job;
    }

    public override Task<DeleteJobResponse> DeleteJob(DeleteJobRequest request, ServerCallContext context)
    {
        var job = Find(context, request.JobId);
        if (!retention.Delete(job.JobId))
            throw new RpcException(new Grpc.Core.Status(StatusCode.FailedPrecondition, $"job {job.JobId} is {job.State}; cancel it before deleting it"));
        return Task.FromResult(new DeleteJobResponse { Deleted = true });
    }

    public override Task<ListJobsResponse> ListJobs(ListJobsRequest request, ServerCallContext context) =>
        Task.FromResult(JobPages.Read(store, ApiKeyInterceptor.Tenant(context), request));

    public override Task<Job> CancelJob(CancelJobRequest request, ServerCallContext context)
    {
        var job = Find(context, request.JobId);
        if (!worker.Cancel(job.JobId))
            throw new RpcException(new Grpc.Core.Status(StatusCode.FailedPrecondition, $"job {job.JobId} has already ended ({job.State})"));
        return Task.FromResult(store.Get(job.JobId)!);
    }

    public override async Task<Report> GetReport(GetReportRequest request, ServerCallContext context)
    {
        var job = Find(context, request.JobId);
        if (job.State != JobState.Succeeded)
            throw new RpcException(new Grpc.Core.Status(StatusCode.FailedPrecondition, $"job {job.JobId} is {job.State}; its report exists once it has succeeded"));
        var folder = options.Value.JobFolder(job.JobId);
        var report = new Report
        {
            JobId = job.JobId,
            ReportJson = await File.ReadAllTextAsync(Path.Combine(folder, "report.json")),
            ReportMd = await File.ReadAllTextAsync(Path.Combine(folder, "report.md")),
        };
        if (request.IncludeImages)
            foreach (var path in Directory.GetFiles(folder, "*.png").Order(StringComparer.Ordinal))
                report.Files.Add(new ReportFile { Name = Path.GetFileName(path), Content = ByteString.CopyFrom(await File.ReadAllBytesAsync(path)) });
        return report;
    }

    Job Find(ServerCallContext context, string jobId)
    {
        if (string.IsNullOrEmpty(jobId)) throw Invalid([new SpecViolation("job_id", "is required")]);
        return store.Get(jobId, ApiKeyInterceptor.Tenant(context)) ?? throw new RpcException(new Grpc.Core.Status(StatusCode.NotFound, $"no job '{jobId}'"));
    }

    static bool Ended(JobState state) => state is JobState.Succeeded or JobState.Failed or JobState.Cancelled;

    /// <summary>INVALID_ARGUMENT listing every problem, with a google.rpc.BadRequest naming each field.</summary>
    static RpcException Invalid(IReadOnlyList<SpecViolation> violations) =>
        GrpcErrors.InvalidArgument("invalid attack spec: " + string.Join("; ", violations), violations.Select(v => (v.Field, v.Problem)));
}
