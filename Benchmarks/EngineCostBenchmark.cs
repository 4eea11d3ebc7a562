using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using MLNetQuant.Samples.Shared;
using MLNetQuant.Training;

namespace MLNetQuant.Benchmarks;

internal sealed record EngineCostResult(string Name, int Rounds, double[] CappedSeconds, double[] UncappedSeconds,
    double MedianRatio, int UncappedDiverged, int CappedDiverged, string Command);

/// <summary>What TorchEngine.Protect costs: one float epoch of the reference CNN on the full training set, in child
/// processes alternating with and without the oneDNN cap (it is fixed per process), side by side; the ratio per pair
/// and its median. Children without the cap may diverge (the fault it removes): counted, not hidden.</summary>
internal static class EngineCostBenchmark
{
    public const string ChildFlag = "--engine-epoch";

    /// <summary>The child side: trains one float epoch and prints its seconds, or that it diverged.</summary>
    public static int Child(int rows)
    {
        var ml = new MLContext(seed: 1);
        var (train, _, _) = FashionData.Load(ml, train: true, rows);
        try
        {
            var run = QuantizationRunner.Run(ml, new FloatTrainingOptions
            {
                ModelFactory = FashionNets.Cnn, InputShape = new long[] { 1, 28, 28 }, Epochs = 1, LearningRate = 0.01,
                Momentum = 0.9, BatchSize = 64, Device = QuantDevice.Cpu, LogEverySteps = 1000,
            }, train);
            Console.WriteLine($"epoch-seconds {run.History[0].Seconds.ToString(CultureInfo.InvariantCulture)} protection {TorchEngine.Protection}");
        }
        catch (InvalidOperationException e) when (e.Message.Contains("diverged", StringComparison.Ordinal))
        {
            Console.WriteLine($"diverged protection {TorchEngine.Protection}: {e.Message}");
        }
        return 0;
    }

    public static EngineCostResult Run(string output, string command, int rows, int rounds)
    {
        (double? Seconds, string Line) Epoch(bool capped)
        {
            var start = new ProcessStartInfo("dotnet", $"\"{typeof(EngineCostBenchmark).Assembly.Location}\" {ChildFlag} {rows}")
            {
                RedirectStandardOutput = true,
            };
            // The guard leaves a DNNL_MAX_CPU_ISA already set alone: ALL is the uncapped engine. (This process's own cap is
            // in the environment children inherit, so the capped child gets none and applies its own.)
            if (capped) start.Environment.Remove(TorchEngine.IsaCapVariable);
            else start.Environment[TorchEngine.IsaCapVariable] = "ALL";
            using var child = Process.Start(start)!;
            var text = child.StandardOutput.ReadToEnd();
            child.WaitForExit();
            var line = text.Split('\n').Last(l => l.StartsWith("epoch-seconds", StringComparison.Ordinal) || l.StartsWith("diverged", StringComparison.Ordinal));
            Console.WriteLine($"   {(capped ? "capped  " : "uncapped")}: {line}");
            return line.StartsWith("epoch-seconds", StringComparison.Ordinal)
                ? (double.Parse(line.Split(' ')[1], CultureInfo.InvariantCulture), line)
                : (null, line);
        }
        var capped = new List<double>();
        var uncapped = new List<double>();
        var ratios = new List<double>();
        int cappedDiverged = 0, uncappedDiverged = 0;
        for (var round = 0; round < rounds; round++)
        {
            // Alternate which goes first, so drift on a shared machine does not favour one side.
            var order = round % 2 == 0 ? new[] { true, false } : new[] { false, true };
            var seconds = new Dictionary<bool, double?>();
            foreach (var isCapped in order) seconds[isCapped] = Epoch(isCapped).Seconds;
            if (seconds[true] is { } c) capped.Add(c); else cappedDiverged++;
            if (seconds[false] is { } u) uncapped.Add(u); else uncappedDiverged++;
            if (seconds[true] is { } c2 && seconds[false] is { } u2) ratios.Add(c2 / u2);
        }
        ratios.Sort();
        var median = ratios.Count == 0 ? double.NaN : ratios[ratios.Count / 2];
        var result = new EngineCostResult("engine-cost", rounds, capped.Select(s => Math.Round(s, 1)).ToArray(),
            uncapped.Select(s => Math.Round(s, 1)).ToArray(), Math.Round(median, 3), uncappedDiverged, cappedDiverged, command);
        ResultFile.Write(output, result.Name, result);
        Console.WriteLine($"==> oneDNN cap: float epoch capped/uncapped median {median:F2}× over {ratios.Count} pairs; " +
            $"uncapped diverged {uncappedDiverged}/{rounds}, capped {cappedDiverged}/{rounds}");
        return result;
    }
}
