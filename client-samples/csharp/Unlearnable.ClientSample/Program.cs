using Unlearnable.ClientSample;

// unlearnable-client protect --address http://127.0.0.1:5051 --api-key KEY --user alice --post p1 --image a.jpg --caption "..." --out a-protected.jpg
// unlearnable-client session --address ... --user alice --images a.jpg,b.jpg --caption "..." --out-dir protected/
var options = new Dictionary<string, string>();
for (int i = 1; i + 1 < args.Length; i += 2) options[args[i].TrimStart('-')] = args[i + 1];
string Get(string name, string? fallback = null) => options.TryGetValue(name, out var v) ? v : fallback ?? throw new ArgumentException($"--{name} is required");
if (args.Length == 0 || args[0] is not ("protect" or "session"))
{
    Console.Error.WriteLine("usage: unlearnable-client protect|session --address URL [--api-key KEY] --user ID ...");
    return 2;
}
using var client = new SidecarClient(Get("address", "http://127.0.0.1:5051"), Get("api-key", Environment.GetEnvironmentVariable("UNLEARNABLE_API_KEY") ?? ""));
try
{
    if (args[0] == "protect")
    {
        var response = await client.ProtectBeforePublishAsync(Get("user"), Get("post"), File.ReadAllBytes(Get("image")), Get("caption", ""));
        File.WriteAllBytes(Get("out"), response.Image.ToByteArray());
        Console.WriteLine($"{response.PostId}: \"{response.ProtectedCaption}\" L∞ {response.Quality.Linf}/255, PSNR {response.Quality.PsnrDb:F1} dB -> {Get("out")}");
    }
    else
    {
        var images = Get("images").Split(',');
        Directory.CreateDirectory(Get("out-dir"));
        var posts = images.Select((path, i) => ($"{Path.GetFileNameWithoutExtension(path)}-{i}", File.ReadAllBytes(path), Get("caption", "")));
        await foreach (var response in client.ProtectSessionAsync(Get("user"), posts))
        {
            if (response.Error is { } error) { Console.WriteLine($"{response.PostId}: failed ({error.Code}) {error.Message}"); continue; }
            var extension = response.ImageFormat switch
            {
                Unlearnable.Contracts.V1.ImageFormat.Jpeg => ".jpg",
                Unlearnable.Contracts.V1.ImageFormat.WebpLossless => ".webp",
                _ => ".png",
            };
            var path = Path.Combine(Get("out-dir"), response.PostId + extension);
            File.WriteAllBytes(path, response.Image.ToByteArray());
            Console.WriteLine($"{response.PostId}: \"{response.ProtectedCaption}\" -> {path}");
        }
    }
    return 0;
}
catch (Grpc.Core.RpcException e)
{
    Console.Error.WriteLine($"{e.StatusCode}: {e.Status.Detail}");
    return 1;
}
