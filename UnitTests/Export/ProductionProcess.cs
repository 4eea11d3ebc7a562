using MLNetQuant.UnitTests.Samples;

namespace MLNetQuant.UnitTests.Export;

/// <summary>Scores rows with a saved model in Samples/ProductionLoader: a separate process that references only
/// Microsoft.ML, Microsoft.ML.OnnxTransformer and ONNX Runtime.</summary>
internal static class ProductionProcess
{
    public static readonly string ProjectDirectory = Path.Combine("Samples", "ProductionLoader");

    /// <summary>Every row's Score vector, concatenated; each row's PredictedLabel key (null when the model has none);
    /// and the program's console output.</summary>
    public static (float[] Scores, uint[]? PredictedLabels, string Output) Score(string zip, float[] features, int featureCount)
    {
        var folder = Directory.CreateTempSubdirectory("mlnetquant-production-");
        try
        {
            var input = Path.Combine(folder.FullName, "features.bin");
            var output = Path.Combine(folder.FullName, "scores.bin");
            var labels = Path.Combine(folder.FullName, "labels.bin");
            var bytes = new byte[features.Length * 4];
            Buffer.BlockCopy(features, 0, bytes, 0, bytes.Length);
            File.WriteAllBytes(input, bytes);
            var log = Run(zip, $"--features \"{input}\" --scores \"{output}\" --size {featureCount} --labels \"{labels}\"");
            var scores = ReadFloats(output);
            uint[]? predicted = null;
            if (File.Exists(labels))
            {
                var labelBytes = File.ReadAllBytes(labels);
                predicted = new uint[labelBytes.Length / 4];
                Buffer.BlockCopy(labelBytes, 0, predicted, 0, labelBytes.Length);
            }
            return (scores, predicted, log);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    /// <summary>Each text's embedding (the float column <paramref name="column"/> of a saved text pipeline) and the
    /// program's console output.</summary>
    public static (float[][] Embeddings, string Output) Embed(string zip, IReadOnlyList<string> texts, string column)
    {
        var folder = Directory.CreateTempSubdirectory("mlnetquant-production-");
        try
        {
            var input = Path.Combine(folder.FullName, "texts.txt");
            var output = Path.Combine(folder.FullName, "embeddings.bin");
            File.WriteAllLines(input, texts);
            var log = Run(zip, $"--texts \"{input}\" --embeddings \"{output}\" --column {column}");
            var values = ReadFloats(output);
            var size = values.Length / texts.Count;
            return (values.Chunk(size).ToArray(), log);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    // The loader on a saved model; it must succeed. Returns its console output.
    private static string Run(string zip, string arguments)
    {
        var (exitCode, log) = SampleRunner.RunProject(ProjectDirectory, "ProductionLoader", $"\"{zip}\" {arguments}", TimeSpan.FromMinutes(2));
        Assert.AreEqual(0, exitCode, log);
        return log;
    }

    private static float[] ReadFloats(string path)
    {
        var raw = File.ReadAllBytes(path);
        var values = new float[raw.Length / 4];
        Buffer.BlockCopy(raw, 0, values, 0, raw.Length);
        return values;
    }
}
