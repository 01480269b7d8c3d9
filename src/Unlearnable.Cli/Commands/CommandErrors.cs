using Unlearnable.Data;
using Unlearnable.Imaging;

namespace Unlearnable.Cli.Commands;

/// <summary>
/// Turns expected failures (bad input, missing files, a folder holding another run, cancellation) into one clear line
/// and an exit code. Anything else is a bug: it is not dressed up as the user's mistake (System.CommandLine prints it, exit 1).
/// </summary>
static class CommandErrors
{
    public const int BadInput = 2;
    public const int Cancelled = 130;

    public static async Task<int> Run(Func<Task<int>> action)
    {
        try
        {
            return await action();
        }
        catch (OperationCanceledException)
        {
            await Console.Error.WriteLineAsync("cancelled");
            return Cancelled;
        }
        catch (Exception e) when (e is DataFormatException or ImageRejectedException or ArgumentException or InvalidDataException
                                      or FileNotFoundException or DirectoryNotFoundException or RunConflictException
                                      or Evaluation.SpecException or Evaluation.SidecarRefusedException)
        {
            await Console.Error.WriteLineAsync("error: " + e.Message);
            return BadInput;
        }
    }

    public static int Run(Func<int> action) => Run(() => Task.FromResult(action())).GetAwaiter().GetResult();
}
