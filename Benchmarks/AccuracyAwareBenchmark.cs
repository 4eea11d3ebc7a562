using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Transforms;
using MLNetQuant.Configuration;
using MLNetQuant.OnnxPtq;
using MLNetQuant.Samples.Shared;
using MLNetQuant.Training;
using static TorchSharp.torch;

namespace MLNetQuant.Benchmarks;

/// <summary>One post-training (or QAT) variant of the depthwise-separable CNN against the float model, on the full test set.</summary>
internal sealed record AccuracyAwareResult(string Name, string Algorithm, string Model, string Weights, double Accuracy, double BaselineAccuracy,
    double Difference, double? AllowedDrop, bool Met, double Seconds, long OnnxBytes, long FloatOnnxBytes, string Notes, string Command);

/// <summary>One tolerance search: the validation metric kept within tolerance, and the held-out test accuracy.</summary>
internal sealed record ToleranceSearchResult(string Name, string Algorithm, string Model, string Weights, double Accuracy, double BaselineAccuracy,
    double Tolerance, bool Met, IReadOnlyList<string> FloatLayers, int Trials, double ValidationAccuracy, double FloatValidationAccuracy,
    double FullyQuantizedValidationAccuracy, int MaxFloatLayers, int MaxTrials, bool TargetMet, double Seconds, string Command);

/// <summary>Issue 14's measurements: a MobileNet-style depthwise-separable CNN (ReLU6) trained on full Fashion-MNIST,
/// quantized with per-tensor int8 weights — plain PTQ, CLE, CLE + bias correction, AdaRound W8 and W4, QAT — and the
/// accuracy-tolerance search on the Fashion models (0.3 pt on a 5,000-row validation half of the test set; accuracy
/// reported on the other half).</summary>
internal static class AccuracyAwareBenchmark
{
    private sealed class ScoreRow
    {
        public float[] Score { get; set; } = Array.Empty<float>();

        public uint Label { get; set; }
    }

    public static void Run(MLContext ml, IDataView train, IDataView test, string output, string command, int floatEpochs, int seed, ISet<string> only)
    {
        bool Runs(string part) => only.Count == 0 || only.Contains("accuracy-aware") || only.Contains(part);
        // ML.NET's evaluators need a key label; ByValue keeps key k ↔ class k − 1 (the model's output order).
        var keyed = ml.Transforms.Conversion.MapValueToKey("LabelKey", "Label", keyOrdinality: ValueToKeyMappingEstimator.KeyOrdinality.ByValue).Fit(train);
        train = keyed.Transform(train);
        test = keyed.Transform(test);

        Console.WriteLine($"-- depthwise-separable CNN (ReLU6): float, {floatEpochs} epoch(s)");
        var floatOptions = new FloatTrainingOptions
        {
            ModelFactory = FashionNets.DepthwiseSeparableCnn, InputShape = new long[] { 1, 28, 28 }, Epochs = floatEpochs, LearningRate = 0.01,
            Momentum = 0.9, BatchSize = 64, Device = QuantDevice.Cpu, Progress = new ConsoleProgress(), LogEverySteps = 300,
        };
        // The trained float model is kept in the temp folder (weights and ONNX export, keyed by epochs, rows and seed) so
        // the parts can be re-run one by one against the same float model; delete the files to retrain.
        var rows = ml.Data.CreateEnumerable<FashionRow>(train, false).Count();
        var cache = Path.Combine(Path.GetTempPath(), $"mlnetquant-dscnn-e{floatEpochs}-n{rows}-s{seed}");
        byte[] floatOnnx;
        if (File.Exists(cache + ".bin") && File.Exists(cache + ".onnx"))
        {
            Console.WriteLine($"   (reusing the float model trained earlier: {cache}.bin/.onnx)");
            floatOnnx = File.ReadAllBytes(cache + ".onnx");
        }
        else
        {
            var floatRun = QuantizationRunner.Run(ml, floatOptions, train);
            floatOnnx = MLNetQuant.Export.OnnxExport.ToOnnx(floatRun, floatOptions);
            floatRun.Network.Model.save(cache + ".bin");
            File.WriteAllBytes(cache + ".onnx", floatOnnx);
        }
        var floatAccuracy = Accuracy(ml, test, floatOnnx);
        Console.WriteLine($"==> float depthwise-separable CNN: {floatAccuracy:F2} %");

        if (Runs("cle") || Runs("adaround") || Runs("mixed") || only.Any(o => o.StartsWith("dscnn-", StringComparison.Ordinal) && o != "dscnn-qat"))
        {
            var variants = new (string Name, string Weights, double? Allowed, string Notes, Action<OnnxQuantizationOptions> Set)[]
            {
                ("dscnn-ptq-perchannel-w8", "W8 per-channel", null, "reference: per-channel int8 weights, no correction", o => o.PerChannelWeights = true),
                ("dscnn-ptq-pertensor-w8", "W8 per-tensor", null, "plain PTQ, per-tensor int8 weights", _ => { }),
                ("dscnn-cle-pertensor-w8", "W8 per-tensor", null, "cross-layer equalization", o => o.CrossLayerEqualization = true),
                ("dscnn-cle-bc-pertensor-w8", "W8 per-tensor", 0.5, "CLE + bias correction (target: within 0.5 pt of float)",
                    o => { o.CrossLayerEqualization = true; o.BiasCorrection = true; }),
                ("dscnn-adaround-pertensor-w8", "W8 per-tensor", null, "AdaRound alone", o => o.AdaRound = new AdaRoundOptions()),
                ("dscnn-cle-adaround-pertensor-w8", "W8 per-tensor", null, "CLE + AdaRound", o => { o.CrossLayerEqualization = true; o.AdaRound = new AdaRoundOptions(); }),
                ("dscnn-ptq-pertensor-w4", "W4 per-tensor", null, "plain PTQ at 4 bits", o => o.WeightBits = 4),
                ("dscnn-cle-bc-pertensor-w4", "W4 per-tensor", null, "CLE + bias correction at 4 bits",
                    o => { o.WeightBits = 4; o.CrossLayerEqualization = true; o.BiasCorrection = true; }),
                ("dscnn-adaround-pertensor-w4", "W4 per-tensor", null, "AdaRound alone at 4 bits", o => { o.WeightBits = 4; o.AdaRound = new AdaRoundOptions(); }),
                ("dscnn-cle-adaround-pertensor-w4", "W4 per-tensor", 1.5, "CLE + AdaRound at 4 bits (target: within 1.5 pt of float)",
                    o => { o.WeightBits = 4; o.CrossLayerEqualization = true; o.AdaRound = new AdaRoundOptions(); }),
                ("dscnn-cle-adaround-bc-pertensor-w4", "W4 per-tensor", 1.5, "CLE + AdaRound + bias correction at 4 bits",
                    o => { o.WeightBits = 4; o.CrossLayerEqualization = true; o.AdaRound = new AdaRoundOptions(); o.BiasCorrection = true; }),
                ("dscnn-mixed-budget18-perchannel", "W4/W8 per-channel, 18 % budget", null, "mixed precision: 4 or 8 bits per layer, weights within 18 % of float",
                    o => { o.PerChannelWeights = true; o.WeightSizeBudget = 0.18; }),
                ("dscnn-mixed-budget18-cle-adaround-perchannel", "W4/W8 per-channel, 18 % budget", null, "mixed precision with CLE + AdaRound",
                    o => { o.PerChannelWeights = true; o.WeightSizeBudget = 0.18; o.CrossLayerEqualization = true; o.AdaRound = new AdaRoundOptions(); }),
            };
            foreach (var (name, weights, allowed, notes, set) in variants.Where(v => Runs(v.Name) || Runs(v.Name.Contains("adaround") ? "adaround" : "cle") ||
                v.Name.Contains("mixed", StringComparison.Ordinal) && Runs("mixed")))
            {
                Console.WriteLine($"-- {name}: {notes}");
                var options = new OnnxQuantizationOptions { ModelBytes = floatOnnx, PerChannelWeights = false, CalibrationRows = 1000, Progress = new ConsoleProgress() };
                set(options);
                var clock = System.Diagnostics.Stopwatch.StartNew();
                using var model = ml.Quantization().Observer(options).Fit(train);
                var seconds = clock.Elapsed.TotalSeconds;
                var accuracy = Accuracy(model.Transform(test), ml);
                Write(output, new AccuracyAwareResult(name, model.Report.Algorithm, "depthwise-separable CNN (Fashion-MNIST, ReLU6)", weights, Math.Round(accuracy, 2),
                    Math.Round(floatAccuracy, 2), Math.Round(accuracy - floatAccuracy, 2), allowed, allowed is null || accuracy >= floatAccuracy - allowed - 1e-9,
                    Math.Round(seconds, 1), model.GetOnnxBytes().LongLength, floatOnnx.LongLength, notes, command));
            }
        }

        if (Runs("dscnn-qat"))
        {
            Console.WriteLine("-- dscnn QAT W8A8 per-tensor weights, 1 epoch");
            var start = FashionNets.DepthwiseSeparableCnn();
            start.load(cache + ".bin");
            var options = new QatOptions
            {
                Model = start, InputShape = new long[] { 1, 28, 28 }, Epochs = 1, LearningRate = 0.001, Momentum = 0.9, BatchSize = 64,
                Device = QuantDevice.Cpu, Progress = new ConsoleProgress(), LogEverySteps = 300,
                Config = { new QuantConfig { QuantTypes = { QuantType.Weight, QuantType.Input }, QuantBits = 8, OpTypes = { "Conv2d", "Linear" },
                    QuantSchemeByType = { [QuantType.Weight] = QuantScheme.PerTensorSymmetric } } },
            };
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var run = QuantizationRunner.Run(ml, options, train);
            var qatOnnx = MLNetQuant.Export.OnnxExport.ToOnnx(run, options);
            var accuracy = Accuracy(ml, test, qatOnnx);
            Write(output, new AccuracyAwareResult("dscnn-qat-pertensor-w8a8", "QAT", "depthwise-separable CNN (Fashion-MNIST, ReLU6)", "W8 per-tensor",
                Math.Round(accuracy, 2), Math.Round(floatAccuracy, 2), Math.Round(accuracy - floatAccuracy, 2), null, true,
                Math.Round(clock.Elapsed.TotalSeconds, 1), qatOnnx.LongLength, floatOnnx.LongLength, "1 epoch of QAT (SGD lr 0.001, momentum 0.9), exported QDQ model in ONNX Runtime", command));
        }

        if (Runs("tolerance") || only.Any(o => o.StartsWith("tolerance-", StringComparison.Ordinal)))
        {
            var validation = ml.Data.TakeRows(test, 5000);
            var held = ml.Data.SkipRows(test, 5000);
            // Each Fashion model at int8 (per-channel, and per-tensor for the depthwise net) and, where the search has work
            // to do, with 4-bit per-tensor weights.
            var cnn = File.ReadAllBytes(FashionOnnxPtqBenchmark.Find("fashion_cnn_fp32.onnx"));
            var mlp = File.ReadAllBytes(FashionOnnxPtqBenchmark.Find("fashion_mlp_fp32.onnx"));
            var models = new (string Name, string Model, byte[] Onnx, bool PerChannel, int Bits)[]
            {
                ("tolerance-fashion-cnn-w8", "fashion_cnn_fp32.onnx", cnn, true, 8),
                ("tolerance-fashion-mlp-w8", "fashion_mlp_fp32.onnx", mlp, true, 8),
                ("tolerance-dscnn-w8", "depthwise-separable CNN", floatOnnx, true, 8),
                ("tolerance-dscnn-pertensor-w8", "depthwise-separable CNN", floatOnnx, false, 8),
                ("tolerance-fashion-cnn-pertensor-w4", "fashion_cnn_fp32.onnx", cnn, false, 4),
                ("tolerance-fashion-mlp-pertensor-w4", "fashion_mlp_fp32.onnx", mlp, false, 4),
                ("tolerance-dscnn-pertensor-w4", "depthwise-separable CNN", floatOnnx, false, 4),
                ("tolerance-dscnn-cle-adaround-pertensor-w4", "depthwise-separable CNN", floatOnnx, false, 4),
            };
            foreach (var (name, modelName, onnx, perChannel, bits) in models.Where(m => Runs("tolerance") || Runs(m.Name)))
            {
                Console.WriteLine($"-- {name}: tolerance search, 0.3 pt on 5,000 validation rows");
                var options = new OnnxQuantizationOptions
                {
                    ModelBytes = onnx, PerChannelWeights = perChannel, WeightBits = bits, CalibrationRows = 1000, Progress = new ConsoleProgress(),
                    PredictedLabelColumnName = "PredictedLabel", LabelColumnName = "LabelKey",
                    AccuracyTolerance = AccuracyTolerance.Absolute(0.003), ValidationData = validation,
                    Metric = QuantizationMetric.MulticlassAccuracy("LabelKey"), MaxTrials = 20,
                };
                if (name.Contains("cle-adaround", StringComparison.Ordinal))
                {
                    options.CrossLayerEqualization = true;
                    options.AdaRound = new AdaRoundOptions();
                }
                var clock = System.Diagnostics.Stopwatch.StartNew();
                using var model = ml.Quantization().Observer(options).Fit(train);
                var seconds = clock.Elapsed.TotalSeconds;
                var search = model.Report.ToleranceSearch!;
                var floatHeld = Accuracy(ml, held, onnx);
                var quantizedHeld = Accuracy(model.Transform(held), ml);
                var result = new ToleranceSearchResult(name, model.Report.Algorithm, modelName, $"W{bits} {(perChannel ? "per-channel" : "per-tensor")}", Math.Round(quantizedHeld, 2), Math.Round(floatHeld, 2), 0.3,
                    search.Met, search.FloatLayers, search.Trials.Count, Math.Round(100 * search.QuantizedMetric, 2), Math.Round(100 * search.FloatMetric, 2),
                    Math.Round(100 * search.Trials[0].Metric, 2), 2, 20, search.Met && search.FloatLayers.Count <= 2 && search.Trials.Count <= 20,
                    Math.Round(seconds, 1), command);
                ResultFile.Write(output, name, result, snakeCase: true);
                Console.WriteLine($"==> {name}: validation {result.ValidationAccuracy:F2} % (float {result.FloatValidationAccuracy:F2}, all quantized " +
                    $"{result.FullyQuantizedValidationAccuracy:F2}); {search.FloatLayers.Count} float layer(s) [{string.Join(", ", search.FloatLayers)}] in {search.Trials.Count} " +
                    $"trial(s); held-out test {result.Accuracy:F2} % vs float {result.BaselineAccuracy:F2} %; target {(result.TargetMet ? "met" : "MISSED")}; {seconds:F0} s");
            }
        }
    }

    private static void Write(string output, AccuracyAwareResult result)
    {
        ResultFile.Write(output, result.Name, result, snakeCase: true);
        Console.WriteLine($"==> {result.Name}: {result.Accuracy:F2} % vs float {result.BaselineAccuracy:F2} % ({result.Difference:+0.00;-0.00} pt)" +
            (result.AllowedDrop is null ? "" : $", target within {result.AllowedDrop} pt: {(result.Met ? "met" : "MISSED")}") + $"; {result.Seconds:F0} s");
    }

    // Top-1 accuracy (%) of scored data (Score vectors against the class-index Label).
    private static double Accuracy(IDataView scored, MLContext ml)
    {
        var rows = ml.Data.CreateEnumerable<ScoreRow>(scored, false).ToList();
        return 100.0 * rows.Count(r => ArgMax(r.Score) == r.Label) / rows.Count;
    }

    // Top-1 accuracy (%) of an ONNX classifier (one Features input) in ONNX Runtime.
    private static double Accuracy(MLContext ml, IDataView data, byte[] onnx)
    {
        var rows = ml.Data.CreateEnumerable<FashionRow>(data, false).ToList();
        using var session = new InferenceSession(onnx);
        var input = session.InputMetadata.Keys.Single();
        var dims = session.InputMetadata[input].Dimensions.Skip(1).Select(d => (long)d).ToArray();
        using var value = OrtValue.CreateTensorValueFromMemory(rows.SelectMany(r => r.Features).ToArray(), new[] { (long)rows.Count }.Concat(dims).ToArray());
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, new[] { input }, new[] { value }, new[] { session.OutputMetadata.Keys.First() });
        var scores = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        var classes = scores.Length / rows.Count;
        return 100.0 * rows.Where((r, i) => ArgMax(scores.AsSpan(i * classes, classes)) == r.Label).Count() / rows.Count;
    }

    private static int ArgMax(ReadOnlySpan<float> values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++) if (values[i] > values[best]) best = i;
        return best;
    }
}
