using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;
using MLNetQuant.OnnxPtq;
using MLNetQuant.Samples.Shared;
using MLNetQuant.Training;

namespace MLNetQuant.Benchmarks;

/// <summary>One PyTorch-exported float model of ../shared/models quantized post-training: float vs int8 test accuracy.</summary>
internal sealed record FashionOnnxResult(string Name, string Calibration, int CalibrationRows, double FloatAccuracy, double Int8Accuracy,
    double Difference, bool Met, long FloatBytes, long Int8Bytes, string Command);

/// <summary>Post-training quantization of the PyTorch-exported Fashion models in ../shared/models, on the full test set.</summary>
internal static class FashionOnnxPtqBenchmark
{
    private sealed class ScoreRow
    {
        public float[] Score { get; set; } = Array.Empty<float>();
    }

    public static void Run(MLContext ml, IDataView train, IDataView test, string output, string command)
    {
        var labels = ml.Data.CreateEnumerable<FashionRow>(test, false).Select(r => (int)r.Label).ToArray();
        var features = ml.Data.CreateEnumerable<FashionRow>(test, false).SelectMany(r => r.Features).ToArray();
        foreach (var file in new[] { "fashion_cnn_fp32.onnx", "fashion_mlp_fp32.onnx" })
        {
            var path = Find(file);
            using var session = new InferenceSession(path);
            var input = session.InputMetadata.Keys.Single();
            var dims = session.InputMetadata[input].Dimensions.Skip(1).Select(d => (long)d).ToArray();
            using var value = OrtValue.CreateTensorValueFromMemory(features, new[] { (long)labels.Length }.Concat(dims).ToArray());
            using var runOptions = new RunOptions(); // kept alive across the native call (a temporary could be finalized during it)
            using var outputs = session.Run(runOptions, new[] { input }, new[] { value }, new[] { session.OutputMetadata.Keys.First() });
            var logits = outputs[0].GetTensorDataAsSpan<float>().ToArray();
            var floatAccuracy = 100.0 * labels.Where((l, i) => ArgMax(logits.AsSpan(i * 10, 10)) == l).Count() / labels.Length;

            using var model = ml.Quantization().Observer(new OnnxQuantizationOptions
            {
                ModelPath = path, Calibration = CalibrationMethod.Histogram, CalibrationRows = 1000,
            }).Fit(train);
            var scores = ml.Data.CreateEnumerable<ScoreRow>(model.Transform(test), false).Select(r => ArgMax(r.Score)).ToArray();
            var int8Accuracy = 100.0 * scores.Zip(labels).Count(p => p.First == p.Second) / labels.Length;
            var result = new FashionOnnxResult(file.Replace(".onnx", "-observer-w8a8", StringComparison.Ordinal), "Histogram", 1000,
                Math.Round(floatAccuracy, 2), Math.Round(int8Accuracy, 2), Math.Round(int8Accuracy - floatAccuracy, 2),
                int8Accuracy >= floatAccuracy - 0.5, new FileInfo(path).Length, model.GetOnnxBytes().LongLength, command);
            ResultFile.Write(output, result.Name, result);
            Console.WriteLine($"==> {file}: float {floatAccuracy:F2} %, int8 {int8Accuracy:F2} % ({result.Difference:+0.00;-0.00} pt; target within 0.5) " +
                $"{(result.Met ? "met" : "MISSED")}; {result.Int8Bytes / 1024} KiB vs {result.FloatBytes / 1024} KiB");
        }
    }

    /// <summary>A model of ../shared/models, searched above the working directory and the binaries.</summary>
    internal static string Find(string file)
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "shared", "models", file);
                if (File.Exists(candidate)) return candidate;
            }
        throw new FileNotFoundException($"../shared/models/{file} not found above {Environment.CurrentDirectory} or {AppContext.BaseDirectory}.");
    }

    private static int ArgMax(ReadOnlySpan<float> values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++) if (values[i] > values[best]) best = i;
        return best;
    }
}
