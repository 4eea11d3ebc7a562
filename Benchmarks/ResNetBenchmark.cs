using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;
using MLNetQuant.OnnxPtq;
using MLNetQuant.Samples.Shared;
using MLNetQuant.Training;

namespace MLNetQuant.Benchmarks;

/// <summary>Post-training quantization of ResNet-18 (ImageNet, exported by CNTK 2.6 at opset 8, from the NuGet package
/// Microsoft.ML.DnnImageFeaturizer.ResNet18): calibrated on Fashion-MNIST images tiled up to 224×224 RGB, compared
/// with the float model on held-out images (cosine of the 512-d features), ORT latency at batch 1 and 32, size.</summary>
internal sealed record ResNetResult(string Name, int CalibrationRows, int EvaluationRows, double MeanCosine, double MinCosine,
    double FloatMsPerImageBatch1, double Int8MsPerImageBatch1, double SpeedupBatch1, double FloatMsPerImageBatch32,
    double Int8MsPerImageBatch32, double SpeedupBatch32, long FloatBytes, long Int8Bytes, double SizeRatio, int FoldedBatchNorms,
    double CalibrationSeconds, int Threads, string Data, string Command);

internal static class ResNetBenchmark
{
    private const int Side = ResNetTiles.Side;
    private const int Size = ResNetTiles.Size;

    public static ResNetResult Run(string output, string command, int threads, int calibrationRows, int evaluationRows)
    {
        var modelPath = ResNetTiles.ModelPath;
        var meanImage = ResNetTiles.MeanImage();

        var ml = new MLContext(seed: 1);
        var calibration = ml.Data.LoadFromEnumerable(ResNetTiles.Load(train: true, calibrationRows, meanImage));
        var clock = Stopwatch.StartNew();
        using var quantized = ml.Quantization().Observer(new OnnxQuantizationOptions
        {
            ModelPath = modelPath, Calibration = CalibrationMethod.Percentile, Percentile = 99.999, CalibrationRows = calibrationRows, BatchSize = 16,
            // A featurizer: its output is the pooled 512-d embedding, which may carry one 8-bit rounding (cosine 0.99660 →
            // 0.99653) so ORT pools in int8 channels-last; classifiers keep exact scores by leaving pooling out.
            OpTypes = { "AveragePool" },
        }).Fit(calibration);
        var calibrationSeconds = clock.Elapsed.TotalSeconds;
        var floatModel = OnnxModelPreparation.Prepare(File.ReadAllBytes(modelPath));
        var int8Model = quantized.GetOnnxBytes();
        var foldedBatchNorms = 22 - global::Onnx.ModelProto.Parser.ParseFrom(floatModel).Graph.Node.Count(n => n.OpType == "BatchNormalization");

        using var options = SideBySide.SessionOptions(threads); // idle threads sleep: see SideBySide
        using var floatSession = new InferenceSession(floatModel, options);
        using var int8Session = new InferenceSession(int8Model, options);
        var inputName = floatSession.InputMetadata.Keys.Single();
        var outputName = floatSession.OutputMetadata.Keys.First();

        var held = ResNetTiles.Load(train: false, evaluationRows, meanImage).ToArray();
        var cosines = new List<double>();
        foreach (var chunk in held.Chunk(16))
        {
            var f = Run(floatSession, inputName, outputName, chunk);
            var q = Run(int8Session, "Features", "Score", chunk);
            var per = f.Length / chunk.Length;
            for (var i = 0; i < chunk.Length; i++) cosines.Add(Cosine(f.AsSpan(i * per, per), q.AsSpan(i * per, per)));
        }

        double Time(InferenceSession session, string input, string outputTensor, ResNetImageRow[] batch, int iterations)
        {
            var data = batch.SelectMany(r => r.Features).ToArray();
            // The QDQ model keeps the float model's input shape (only its name is the column's).
            using var value = OrtValue.CreateTensorValueFromMemory(data, new long[] { batch.Length, 3, Side, Side });
            using var runOptions = new RunOptions();
            var watch = Stopwatch.StartNew();
            for (var i = 0; i < iterations; i++)
                session.Run(runOptions, new[] { input }, new[] { value }, new[] { outputTensor }).Dispose();
            return watch.Elapsed.TotalMilliseconds / iterations / batch.Length;
        }
        // Each session is warmed up at each batch size first (the first run at a new size plans and allocates its
        // buffers), then float and int8 alternate over seven rounds (SideBySide).
        var one = held.Take(1).ToArray();
        var thirtyTwo = held.Take(32).ToArray();
        Time(floatSession, inputName, outputName, one, 3);
        Time(int8Session, "Features", "Score", one, 3);
        Time(floatSession, inputName, outputName, thirtyTwo, 1);
        Time(int8Session, "Features", "Score", thirtyTwo, 1);
        var medians = SideBySide.Medians(7,
            () => Time(floatSession, inputName, outputName, one, 20),
            () => Time(int8Session, "Features", "Score", one, 20),
            () => Time(floatSession, inputName, outputName, thirtyTwo, 2),
            () => Time(int8Session, "Features", "Score", thirtyTwo, 2));
        var (f1, q1, f32, q32) = (medians[0], medians[1], medians[2], medians[3]);
        var originalBytes = new FileInfo(modelPath).Length;
        var result = new ResNetResult("resnet18-observer-w8a8", calibrationRows, held.Length, Math.Round(cosines.Average(), 5),
            Math.Round(cosines.Min(), 5), Math.Round(f1, 2), Math.Round(q1, 2), Math.Round(f1 / q1, 2), Math.Round(f32, 2), Math.Round(q32, 2),
            Math.Round(f32 / q32, 2), originalBytes, int8Model.LongLength, Math.Round((double)int8Model.LongLength / originalBytes, 4),
            foldedBatchNorms, Math.Round(calibrationSeconds, 1), threads,
            "Fashion-MNIST images (calibration: training set; evaluation: test set) scaled ×8 to 224×224 with nearest neighbours, grey copied to 3 channels, 0–255 minus the package's ImageNet mean image",
            command);
        ResultFile.Write(output, result.Name, result);
        Console.WriteLine($"==> ResNet-18 PTQ: cosine mean {result.MeanCosine:F4} (min {result.MinCosine:F4}) on {held.Length} images; " +
            $"batch 1 {f1:F2} → {q1:F2} ms/image ({result.SpeedupBatch1:F2}×), batch 32 {f32:F2} → {q32:F2} ms/image ({result.SpeedupBatch32:F2}×); " +
            $"size {result.SizeRatio:P1}; {foldedBatchNorms} BN folded; calibration {calibrationSeconds:F0} s");
        return result;
    }

    private static float[] Run(InferenceSession session, string input, string output, ResNetImageRow[] batch)
    {
        var data = batch.SelectMany(r => r.Features).ToArray();
        var shape = new long[] { batch.Length, 3, Side, Side };
        using var value = OrtValue.CreateTensorValueFromMemory(data, shape);
        using var runOptions = new RunOptions(); // kept alive across the native call (a temporary could be finalized during it)
        using var outputs = session.Run(runOptions, new[] { input }, new[] { value }, new[] { output });
        return outputs[0].GetTensorDataAsSpan<float>().ToArray();
    }

    private static double Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double dot = 0, na = 0, nb = 0;
        for (var i = 0; i < a.Length; i++)
        {
            dot += a[i] * b[i];
            na += a[i] * a[i];
            nb += b[i] * b[i];
        }
        return dot / Math.Sqrt(na * nb + 1e-30);
    }
}

/// <summary>Peak memory of ResNet-18 calibration at two calibration-set sizes, each in its own process (the peak
/// working set only grows within a process): flat memory means the observers stream.</summary>
internal sealed record CalibrationMemoryResult(string Name, int SmallRows, long SmallPeakMiB, int LargeRows, long LargePeakMiB,
    double Ratio, string Command);

internal static class CalibrationMemory
{
    /// <summary>The child-process side: calibrates over <paramref name="rows"/> tiles and prints the peak working set.</summary>
    public static int Probe(int rows)
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(ResNetTiles.Load(train: true, rows, ResNetTiles.MeanImage()));
        using var model = ml.Quantization().Observer(new MLNetQuant.OnnxPtq.OnnxQuantizationOptions
        {
            ModelPath = ResNetTiles.ModelPath, CalibrationRows = rows, BatchSize = 16,
            Calibration = CalibrationMethod.Percentile, Percentile = 99.999,
        }).Fit(data);
        using var process = Process.GetCurrentProcess();
        Console.WriteLine($"peak-working-set-bytes {process.PeakWorkingSet64}");
        return 0;
    }

    public static CalibrationMemoryResult Run(string output, string command, int smallRows, int largeRows)
    {
        long Measure(int rows)
        {
            var start = new ProcessStartInfo("dotnet", $"\"{typeof(CalibrationMemory).Assembly.Location}\" --memory-probe {rows}")
            {
                RedirectStandardOutput = true,
            };
            using var child = Process.Start(start)!;
            var text = child.StandardOutput.ReadToEnd();
            child.WaitForExit();
            var line = text.Split('\n').Single(l => l.StartsWith("peak-working-set-bytes", StringComparison.Ordinal));
            return long.Parse(line.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        }
        var small = Measure(smallRows);
        var large = Measure(largeRows);
        var result = new CalibrationMemoryResult("resnet18-calibration-memory", smallRows, small >> 20, largeRows, large >> 20,
            Math.Round((double)large / small, 3), command);
        ResultFile.Write(output, result.Name, result);
        Console.WriteLine($"==> ResNet-18 calibration peak memory: {small >> 20} MiB for {smallRows} rows, {large >> 20} MiB for {largeRows} rows ({result.Ratio:F2}×)");
        return result;
    }
}
