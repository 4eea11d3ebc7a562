using Microsoft.ML.OnnxRuntime;

namespace MLNetQuant.Benchmarks;

/// <summary>Timings taken side by side on a shared machine: the measures alternate within each round, and each reports
/// its median round, so one slow moment moves neither side.</summary>
internal static class SideBySide
{
    /// <summary>Runs every measure once per round, in order, for <paramref name="rounds"/> rounds; returns each
    /// measure's median.</summary>
    public static double[] Medians(int rounds, params Func<double>[] measures)
    {
        var values = measures.Select(_ => new List<double>()).ToArray();
        for (var round = 0; round < rounds; round++)
            for (var m = 0; m < measures.Length; m++) values[m].Add(measures[m]());
        return values.Select(v => v.OrderBy(x => x).ElementAt(v.Count / 2)).ToArray();
    }

    /// <summary>Options for ONNX Runtime sessions timed side by side: <paramref name="threads"/> intra-op threads that
    /// sleep when idle. With ONNX Runtime's default (spinning) the session timed first keeps its idle worker spinning into
    /// the next one's rounds and takes the core it needs: measured on ResNet-18 at batch 1, each model alone in its
    /// process runs as fast spinning as sleeping (int8 4.0–4.2 ms, float 11.9 ms), interleaved with both spinning the pair
    /// reads 5.0 / 12.5 ms (2.5×), with both sleeping 4.1 / 11.7 ms (2.8–2.9×). Every side-by-side ratio before session 9
    /// was taken with spinning sessions and is low by about that much (BENCHMARKS.md, "Idle threads").</summary>
    public static SessionOptions SessionOptions(int threads)
    {
        var options = OnnxInference.CreateCpuSessionOptions(threads);
        options.InterOpNumThreads = 1;
        options.ExecutionMode = ExecutionMode.ORT_SEQUENTIAL;
        return options;
    }
}
