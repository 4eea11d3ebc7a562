using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;
using MLNetQuant.Export;
using MLNetQuant.Training;
using static TorchSharp.torch;

namespace MLNetQuant.Benchmarks;

/// <summary>One exported model checked in ONNX Runtime: the .zip round trip, agreement with TorchSharp, size.</summary>
internal sealed record OnnxEquivalenceResult(string Name, string Algorithm, double ZipReloadAccuracy, double TorchSharpAccuracy,
    double ArgmaxAgreement, double PredictedLabelIsArgmax, double MaxAbsDeltaProbability, long OnnxBytes, long FloatOnnxBytes,
    double SizeRatio, string Command);

/// <summary>ONNX Runtime latency of the int8 model against the float model of the same net.</summary>
internal sealed record OnnxLatencyResult(string Name, int Batch, double FloatMilliseconds, double Int8Milliseconds, double Speedup,
    int Threads, string Command);

/// <summary>The ONNX side of the benchmarks: every algorithm's model saved in the ML.NET .zip, reloaded with a fresh
/// MLContext and scored on the test set, compared row by row with the TorchSharp network it came from.</summary>
internal sealed class OnnxBenchmark
{
    private readonly float[] _testFeatures;
    private readonly uint[] _testLabels;
    private readonly IDataView _test;
    private readonly string _output;
    private readonly string _command;
    private readonly int _threads;

    public OnnxBenchmark(MLContext ml, IDataView test, string output, string command, int threads)
    {
        _test = test;
        _output = output;
        _command = command;
        _threads = threads;
        var rows = ml.Data.CreateEnumerable<MLNetQuant.Samples.Shared.FashionRow>(test, reuseRowObject: false).ToArray();
        _testFeatures = rows.SelectMany(r => r.Features).ToArray();
        _testLabels = rows.Select(r => r.Label).ToArray();
    }

    public List<OnnxEquivalenceResult> Equivalence { get; } = new();

    public byte[]? FloatOnnx { get; set; }

    public OnnxEquivalenceResult Check(string name, QuantizationRun run, QuantizationOptions options)
    {
        var bytes = OnnxExport.ToOnnx(run, options);
        var torch = Predict(run);
        var zip = Path.Combine(Path.GetTempPath(), $"mlnetquant-bench-{name}-{Environment.ProcessId}.zip");
        double[] onnxScores;
        uint[] predictedKeys;
        try
        {
            // As the estimators build it: Score and, the runs being classifiers, the key-typed PredictedLabel.
            var ml = new MLContext(seed: 1);
            using (var model = new QuantizedModelTransformer(ml, bytes, options.FeatureColumnName, "Score", QuantizationReport.FromOnnx(bytes),
                "PredictedLabel", _test.Schema[options.LabelColumnName]))
                ml.Model.Save(model, _test.Schema, zip);
            var fresh = new MLContext();
            var loaded = fresh.Model.Load(zip, out _);
            var predictions = fresh.Data.CreateEnumerable<PredictionRow>(loaded.Transform(_test), reuseRowObject: false).ToArray();
            onnxScores = predictions.SelectMany(r => r.Score.Select(v => (double)v)).ToArray();
            predictedKeys = predictions.Select(r => r.PredictedLabel).ToArray();
            (loaded as IDisposable)?.Dispose();
        }
        finally
        {
            File.Delete(zip);
        }
        var classes = (int)run.Outputs;
        int rows = _testLabels.Length, agree = 0, correctOnnx = 0, correctTorch = 0, keyIsArgMax = 0;
        double maxDelta = 0;
        for (var i = 0; i < rows; i++)
        {
            var o = ArgMax(onnxScores, i * classes, classes);
            var t = ArgMax(torch, i * classes, classes);
            if (o == t) agree++;
            if (predictedKeys[i] == o + 1) keyIsArgMax++;
            if (predictedKeys[i] - 1 == _testLabels[i]) correctOnnx++;
            if (t == _testLabels[i]) correctTorch++;
            for (var c = 0; c < classes; c++) maxDelta = Math.Max(maxDelta, Math.Abs(onnxScores[i * classes + c] - torch[i * classes + c]));
        }
        var floatBytes = FloatOnnx?.LongLength ?? bytes.LongLength;
        var result = new OnnxEquivalenceResult(name, run.Network.AlgorithmName, Math.Round(100.0 * correctOnnx / rows, 2),
            Math.Round(100.0 * correctTorch / rows, 2), Math.Round(100.0 * agree / rows, 2), Math.Round(100.0 * keyIsArgMax / rows, 2),
            Math.Round(maxDelta, 5), bytes.LongLength,
            floatBytes, Math.Round((double)bytes.LongLength / floatBytes, 4), _command);
        Equivalence.Add(result);
        Write($"onnx-{name}", result);
        Console.WriteLine($"==> ONNX {name}: zip reload {result.ZipReloadAccuracy:F2} % vs TorchSharp {result.TorchSharpAccuracy:F2} %, " +
            $"argmax agreement {result.ArgmaxAgreement:F2} %, PredictedLabel = arg-max of Score {result.PredictedLabelIsArgmax:F2} %, max |Δp| {maxDelta:G3}, {bytes.Length / 1024.0:F0} KiB ({result.SizeRatio:P1} of float)");
        return result;
    }

    public List<OnnxLatencyResult> Latency(byte[] floatModel, byte[] int8Model, int rounds)
    {
        var results = new List<OnnxLatencyResult>();
        using var options = SideBySide.SessionOptions(_threads); // idle threads sleep: see SideBySide
        using var floatSession = new InferenceSession(floatModel, options);
        using var int8Session = new InferenceSession(int8Model, options);
        foreach (var batch in new[] { 1, 64 })
        {
            var iterations = batch == 1 ? 400 : 40;
            var input = _testFeatures.AsSpan(0, batch * 784).ToArray();
            double floatTotal = 0, int8Total = 0;
            Time(floatSession, input, batch, 20);
            Time(int8Session, input, batch, 20);
            for (var r = 0; r < rounds; r++)
            {
                floatTotal += Time(floatSession, input, batch, iterations);
                int8Total += Time(int8Session, input, batch, iterations);
            }
            var f = floatTotal / (rounds * iterations);
            var q = int8Total / (rounds * iterations);
            var result = new OnnxLatencyResult($"ort-latency-batch{batch}", batch, Math.Round(f, 4), Math.Round(q, 4), Math.Round(f / q, 2), _threads, _command);
            results.Add(result);
            Write(result.Name, result);
            Console.WriteLine($"==> ORT batch {batch}: float {f:F3} ms, int8 {q:F3} ms, speed-up {f / q:F2}×");
        }
        return results;
    }

    private static double Time(InferenceSession session, float[] input, int batch, int iterations)
    {
        using var value = OrtValue.CreateTensorValueFromMemory(input, new long[] { batch, 784 });
        using var runOptions = new RunOptions();
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < iterations; i++)
        {
            using var outputs = session.Run(runOptions, new[] { "Features" }, new[] { value }, new[] { "Score" });
        }
        return clock.Elapsed.TotalMilliseconds;
    }

    private double[] Predict(QuantizationRun run)
    {
        run.Network.eval();
        var result = new List<double>();
        using var _ = no_grad();
        for (var start = 0; start < _testLabels.Length; start += 500)
        {
            var count = Math.Min(500, _testLabels.Length - start);
            using var scope = NewDisposeScope();
            var x = tensor(_testFeatures.AsSpan(start * 784, count * 784).ToArray(), count, 1, 28, 28).to(run.Device);
            var p = nn.functional.softmax(run.Network.call(x), 1).cpu();
            result.AddRange(p.data<float>().ToArray().Select(v => (double)v));
        }
        return result.ToArray();
    }

    private static int ArgMax(double[] values, int offset, int count)
    {
        var best = 0;
        for (var i = 1; i < count; i++) if (values[offset + i] > values[offset + best]) best = i;
        return best;
    }

    private void Write<T>(string name, T result) =>
        ResultFile.Write(_output, name, result);

    private sealed class PredictionRow
    {
        public float[] Score { get; set; } = Array.Empty<float>();

        public uint PredictedLabel { get; set; }
    }
}
