using Unlearnable.Clip.Runtime;

namespace Unlearnable.Sidecar.Model;

/// <summary>
/// <c>--prepare-model FOLDER</c>: trains the public models this configuration protects against into FOLDER and exits,
/// so that a pod pointed at it (<see cref="ModelOptions.PreparedDirectory"/>) starts in seconds instead of training.
/// The image build runs it with the image's defaults; an init container can run it with a deployment's own settings.
/// It reads the configuration as the server does (appsettings, environment, command line) but starts no server
/// and needs no API keys.
/// </summary>
public static class ModelPreparation
{
    const string Flag = "--prepare-model";

    /// <returns>The exit code when the arguments ask for it (0 = prepared); null otherwise (start the server).</returns>
    public static int? RunIfAsked(string[] args)
    {
        int at = Array.IndexOf(args, Flag);
        if (at < 0) return null;
        if (at + 1 >= args.Length || args[at + 1].StartsWith('-'))
        {
            Console.Error.WriteLine($"{Flag} needs the folder to write the models into, e.g. {Flag} /opt/unlearnable/models");
            return 2;
        }
        string folder = Path.GetFullPath(args[at + 1]);
        var builder = WebApplication.CreateBuilder([.. args[..at], .. args[(at + 2)..]]);
        using var host = builder.Build();
        var log = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(ModelPreparation));
        try
        {
            var config = builder.Configuration.GetSection("Sidecar:Model").Get<ModelOptions>() ?? new ModelOptions();
            config.PreparedDirectory = null;   // what is being made: it need not exist yet (an image or init container sets both)
            config.Validate();
            TorchRuntime.UseHostThreads();
            TorchRuntime.Seed(config.Seed);
            var files = new PublicModelFiles(config, folder, log).Prepare(Devices.Resolve(config.Device), CancellationToken.None);
            log.LogInformation("{Count} public model(s) ready in {Folder}; point Sidecar:Model:PreparedDirectory at it", files.Count, folder);
            return 0;
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or UnauthorizedAccessException)
        {
            log.LogCritical("Could not prepare the models: {Message}", e.Message);
            return 1;
        }
    }
}
