using System.CommandLine;
using Unlearnable.Clip.Text;

namespace Unlearnable.Cli.Commands;

static class TokenizeCommand
{
    public static Command Create()
    {
        var text = new Argument<string>("text") { Description = "Text to encode with CLIP's BPE" };
        var command = new Command("tokenize", "Print CLIP token ids (with SOT and EOT), space separated, on one line") { text };
        command.SetAction(result => CommandErrors.Run(() =>
        {
            var ids = ClipTokenizer.Default.EncodeRaw(result.GetValue(text)!);
            Console.WriteLine(string.Join(' ', ids.Prepend(ClipTokenizer.StartOfText).Append(ClipTokenizer.EndOfText)));
            return 0;
        }));
        return command;
    }
}
