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
}
