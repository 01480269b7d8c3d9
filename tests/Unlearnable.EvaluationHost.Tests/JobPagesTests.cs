using Google.Rpc;
using Grpc.Core;
using Microsoft.Extensions.Options;
using Unlearnable.Contracts.V1;
using Unlearnable.EvaluationHost.Jobs;
using Unlearnable.EvaluationHost.Services;
using Unlearnable.Tests;

namespace Unlearnable.EvaluationHost.Tests;

/// <summary>ListJobs a page at a time: a long queue of large specs would not fit one message (a client takes 4 MiB by default).</summary>
public class JobPagesTests
{
    [Fact]
    public async Task ALongQueueOfLargeSpecsIsListedInPagesEachJobOnceOldestFirst()
    {
        // 120 jobs with 60 KB specs (7 MB in all), queued before the host starts; the worker fails them one by one (not specs it can run).
        var folder = TestFolders.New();
        var store = new SqliteJobStore(Options.Create(new EvaluationHostOptions { DataDirectory = folder }));
        var padding = new string('x', 60_000);
        var ids = Enumerable.Range(0, 120).Select(i => store.Add(EvaluationHostServer.Tenant, $"job {i}", $$"""{ "name": "job {{i}}", "notes": "{{padding}}" }""")!.JobId).ToList();
        await using var host = await EvaluationHostServer.StartAsync(folder);

        var listed = new List<string>();
        var token = "";
        int pages = 0;
        do
        {
            var page = await host.Client.ListJobsAsync(new ListJobsRequest { PageToken = token });
            Assert.InRange(page.CalculateSize(), 1, JobPages.MaxPageBytes + 70_000);
            Assert.InRange(page.Jobs.Count, 1, JobPages.DefaultPageSize);
            listed.AddRange(page.Jobs.Select(j => j.JobId));
            token = page.NextPageToken;
            pages++;
        } while (token != "");
        Assert.Equal(ids, listed);
        Assert.True(pages >= 4, $"{pages} pages: each holds at most 2 MiB of jobs");

        var ten = await host.Client.ListJobsAsync(new ListJobsRequest { PageSize = 10 });
        Assert.Equal(ids.Take(10), ten.Jobs.Select(j => j.JobId));
        var next = await host.Client.ListJobsAsync(new ListJobsRequest { PageSize = 10, PageToken = ten.NextPageToken });
        Assert.Equal(ids.Skip(10).Take(10), next.Jobs.Select(j => j.JobId));
    }

    [Theory]
    [InlineData(101, "", "page_size", "give 1 to 100")]
    [InlineData(-1, "", "page_size", "give 1 to 100")]
    [InlineData(0, "not-a-token", "page_token", "not one this server gave")]
    [InlineData(0, "YWZ0ZXI6LTE=", "page_token", "not one this server gave")]   // "after:-1"
    public async Task ABadPageRequestIsRefusedNamingTheField(int size, string token, string field, string message)
    {
        await using var host = await EvaluationHostServer.StartAsync();
        var e = await Assert.ThrowsAsync<RpcException>(async () => await host.Client.ListJobsAsync(new ListJobsRequest { PageSize = size, PageToken = token }));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains(message, e.Status.Detail);
        Assert.Equal([field], e.GetRpcStatus()!.GetDetail<BadRequest>()!.FieldViolations.Select(v => v.Field));
    }
}
