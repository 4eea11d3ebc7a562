using Microsoft.ML.Runtime;

namespace MLNetQuant.OnnxPtq;

/// <summary>The accuracy-tolerance search (Intel Neural Compressor's tolerable-loss tuning, AIMET AutoQuant's fallback):
/// evaluate the fully quantized model; if it misses the tolerance, rank the quantized nodes by the output error each
/// causes alone (only that node quantized, on a few validation rows — cheap, no metric runs) and evaluate the k most
/// sensitive left float for k = 1, 2, 3, 4, then doubling, then bisecting back to the smallest k that meets it. Each
/// evaluation of the metric is one trial.</summary>
internal static class ToleranceSearch
{
    /// <summary>Searches; returns the nodes to leave float and the trail.</summary>
    /// <param name="layers">The quantized nodes (name, op type) the search may leave float.</param>
    /// <param name="build">The model with the given nodes left float.</param>
    /// <param name="evaluate">The validation metric of a model.</param>
    /// <param name="outputs">A model's score output on the sensitivity rows.</param>
    /// <param name="floatModel">The float model.</param>
    /// <param name="options">Tolerance, metric, trial limit.</param>
    /// <param name="log">The ML.NET channel the trail is logged to.</param>
    public static (HashSet<string> FloatNodes, ToleranceSearchReport Report) Run(IReadOnlyList<(string Node, string OpType)> layers,
        Func<ISet<string>, QuantizedModel> build, Func<QuantizedModel, double> evaluate, Func<QuantizedModel, float[]> outputs,
        QuantizedModel floatModel, OnnxQuantizationOptions options, IChannel log)
    {
        var metric = options.Metric!;
        var floatMetric = evaluate(floatModel);
        var limit = options.AccuracyTolerance!.Limit(floatMetric, metric.HigherIsBetter);
        bool Within(double value) => metric.HigherIsBetter ? value >= limit - 1e-12 : value <= limit + 1e-12;
        bool Better(double a, double b) => metric.HigherIsBetter ? a > b : a < b;
        log.Info(MessageSensitivity.None, $"tolerance search: float {metric.Name} {floatMetric:G6}, limit {limit:G6} ({options.AccuracyTolerance}); " +
            $"{layers.Count} quantized node(s), at most {options.MaxTrials} trial(s).");

        var trials = new List<ToleranceTrial>();
        var ranked = new List<LayerSensitivity>();
        // Evaluates the model with the k most sensitive nodes float; whether it is within the tolerance.
        bool Trial(int k)
        {
            var floatNodes = ranked.Take(k).Select(r => r.Node).ToHashSet(StringComparer.Ordinal);
            var value = evaluate(build(floatNodes));
            var trial = new ToleranceTrial(trials.Count + 1, floatNodes.ToArray(), value, Within(value));
            trials.Add(trial);
            log.Info(MessageSensitivity.None, $"tolerance trial {trial.Trial}: {k} node(s) float{(k > 0 ? $" ({string.Join(", ", trial.FloatLayers)})" : "")}: " +
                $"{metric.Name} {value:G6} — {(trial.Met ? "within" : "outside")} the tolerance");
            return trial.Met;
        }

        var found = Trial(0) ? 0 : -1;
        if (found < 0 && layers.Count > 0)
        {
            ranked = Rank(layers, build, outputs, floatModel);
            log.Info(MessageSensitivity.None, "tolerance search: most sensitive first: " +
                string.Join(", ", ranked.Take(8).Select(r => $"{r.Node} ({r.OpType}) {r.Sensitivity:G3}")) + (ranked.Count > 8 ? " …" : ""));
            // Grow k (1, 2, 3, 4, 8, 16 …) until a model meets the tolerance, then bisect down to the smallest that does.
            var failed = 0;
            for (var k = 1; trials.Count < options.MaxTrials; k = Math.Min(k < 4 ? k + 1 : 2 * k, layers.Count))
            {
                if (Trial(k)) { found = k; break; }
                failed = k;
                if (k == layers.Count) break;
            }
            while (found > failed + 1 && trials.Count < options.MaxTrials)
            {
                var middle = (failed + found) / 2;
                if (Trial(middle)) found = middle;
                else failed = middle;
            }
        }
        // Met: the smallest k that met it. Not met within the trials: the best model seen (of equals, the fewest float).
        var best = found >= 0 ? trials.First(t => t.FloatLayers.Count == found)
            : trials.Aggregate((a, b) => Better(b.Metric, a.Metric) || b.Metric == a.Metric && b.FloatLayers.Count < a.FloatLayers.Count ? b : a);
        var kept = best.FloatLayers.Count;
        var keptNodes = best.FloatLayers.ToHashSet(StringComparer.Ordinal);
        if (found < 0)
            log.Warning(MessageSensitivity.None, $"tolerance search: no model within {options.AccuracyTolerance} of the float {metric.Name} in {trials.Count} trial(s); " +
                $"keeping the best ({kept} node(s) float, {metric.Name} {best.Metric:G6}). Raise MaxTrials, widen the tolerance or exclude nodes.");
        var report = new ToleranceSearchReport(metric.Name, metric.HigherIsBetter, floatMetric, options.AccuracyTolerance.ToString(), limit, found >= 0,
            keptNodes.ToArray())
        {
            QuantizedMetric = best.Metric,
            Trials = trials,
            Sensitivities = ranked,
        };
        return (keptNodes, report);
    }

    // Sensitivity: the relative squared output error with only that node quantized (AIMET's per-layer analysis, Neural
    // Compressor's op-wise tuning). Measured against leave-one-out (error with all quantized minus with that node float)
    // on the depthwise-separable CNN at per-tensor W4, it needed 6 float layers to leave-one-out's 9 (BENCHMARKS.md):
    // when every layer's error compounds, taking one away moves the total little whichever it is.
    private static List<LayerSensitivity> Rank(IReadOnlyList<(string Node, string OpType)> layers, Func<ISet<string>, QuantizedModel> build,
        Func<QuantizedModel, float[]> outputs, QuantizedModel floatModel)
    {
        var error = new OutputError(floatModel, outputs);
        var names = layers.Select(l => l.Node).ToHashSet(StringComparer.Ordinal);
        return layers.Select(l => new LayerSensitivity(l.Node, l.OpType, error.Of(build(names.Where(n => n != l.Node).ToHashSet(StringComparer.Ordinal)))))
            .OrderByDescending(s => s.Sensitivity).ToList();
    }
}
