using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;

namespace MLNetQuant.UnitTests.Graph;

/// <summary>The small third-party-style models in ../shared/models/zoo (PyTorch exports at opsets 9–13) and
/// reference runs of them in ONNX Runtime.</summary>
internal static class ZooModels
{
    /// <summary>The path of a zoo model (fails the test when the shared folder is missing).</summary>
    public static string Path(string file) => Shared(System.IO.Path.Combine("zoo", file));

    /// <summary>The path of a file under ../shared/models (fails the test when it is missing).</summary>
    public static string Shared(string relativePath)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = System.IO.Path.Combine(dir.FullName, "shared", "models", relativePath);
            if (File.Exists(candidate)) return candidate;
        }
        Assert.Fail($"../shared/models/{relativePath} not found above {AppContext.BaseDirectory}.");
        return "";
    }

    /// <summary>Saves <paramref name="model"/> in an ML.NET .zip, loads it with a fresh MLContext and returns the
    /// <paramref name="column"/> values of every row of <paramref name="rows"/>, concatenated.</summary>
    public static float[] ScoresAfterReload<TRow>(MLContext ml, ITransformer model, DataViewSchema schema, IEnumerable<TRow> rows,
        string column = "Score") where TRow : class
    {
        var zip = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"mlnetquant-zoo-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(model, schema, zip);
            var fresh = new MLContext();
            var loaded = fresh.Model.Load(zip, out _);
            var scores = loaded.Transform(fresh.Data.LoadFromEnumerable(rows)).GetColumn<float[]>(column).SelectMany(v => v).ToArray();
            (loaded as IDisposable)?.Dispose();
            return scores;
        }
        finally
        {
            File.Delete(zip);
        }
    }

    /// <summary>Standard-normal noise, seeded.</summary>
    public static float[] Noise(int count, int seed)
    {
        var random = new Random(seed);
        var values = new float[count];
        for (var i = 0; i < count; i++)
            values[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
        return values;
    }

    /// <summary>Runs <paramref name="model"/> (bytes or path) in ONNX Runtime on named inputs; returns the first output.</summary>
    public static float[] Run(byte[] model, IReadOnlyList<(string Name, OrtValue Value)> inputs, string? output = null)
    {
        using var session = new InferenceSession(model);
        using var runOptions = new RunOptions(); // kept alive across the native call
        output ??= session.OutputMetadata.Keys.First();
        using var results = session.Run(runOptions, inputs.Select(i => i.Name).ToArray(), inputs.Select(i => i.Value).ToArray(), new[] { output });
        return results[0].GetTensorDataAsSpan<float>().ToArray();
    }

    /// <summary>The cosine similarity of two vectors.</summary>
    public static double Cosine(float[] a, float[] b)
    {
        Assert.HasCount(a.Length, b);
        double dot = 0, na = 0, nb = 0;
        for (var i = 0; i < a.Length; i++)
        {
            dot += (double)a[i] * b[i];
            na += (double)a[i] * a[i];
            nb += (double)b[i] * b[i];
        }
        return dot / Math.Sqrt(na * nb + 1e-30);
    }

    /// <summary>The op types of <paramref name="model"/> after ONNX Runtime's extended graph optimisations (the
    /// QDQ fusions): what actually runs.</summary>
    public static List<string> OptimizedOps(byte[] model)
    {
        var optimized = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"mlnetquant-zoo-opt-{Guid.NewGuid():N}.onnx");
        try
        {
            using (var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_EXTENDED, OptimizedModelFilePath = optimized })
            using (new InferenceSession(model, options)) { }
            return global::Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(optimized)).Graph.Node.Select(n => n.OpType).ToList();
        }
        finally
        {
            File.Delete(optimized);
        }
    }

    /// <summary>The float logits of a tiny_bert-shaped model (input_ids, attention_mask of 16 tokens) in ONNX Runtime.</summary>
    public static float[] TokenScores(string path, TokenRow[] rows)
    {
        using var ids = OrtValue.CreateTensorValueFromMemory(rows.SelectMany(r => r.input_ids).ToArray(), new long[] { rows.Length, 16 });
        using var mask = OrtValue.CreateTensorValueFromMemory(rows.SelectMany(r => r.attention_mask).ToArray(), new long[] { rows.Length, 16 });
        return Run(File.ReadAllBytes(path), new[] { ("input_ids", ids), ("attention_mask", mask) });
    }

    /// <summary>A row of tiny_bert_op13's two int64 inputs, 16 tokens.</summary>
    public sealed class TokenRow
    {
        [VectorType(16)]
        public long[] input_ids { get; set; } = Array.Empty<long>();

        [VectorType(16)]
        public long[] attention_mask { get; set; } = Array.Empty<long>();
    }

    /// <summary>Random token rows of 6–16 tokens (ids 1–1999), padded with 0, mask 1 on tokens.</summary>
    public static TokenRow[] Tokens(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ =>
        {
            var length = random.Next(6, 17);
            return new TokenRow
            {
                input_ids = Enumerable.Range(0, 16).Select(t => t < length ? (long)random.Next(1, 2000) : 0L).ToArray(),
                attention_mask = Enumerable.Range(0, 16).Select(t => t < length ? 1L : 0L).ToArray(),
            };
        }).ToArray();
    }
}
