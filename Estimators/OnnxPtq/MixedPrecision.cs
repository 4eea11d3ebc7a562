using Microsoft.ML.Runtime;

namespace MLNetQuant.OnnxPtq;

/// <summary>Per-layer weight widths (4 or 8 bits) for a size budget, by the tolerance search's measure: each layer's
/// sensitivity is the model's relative squared output error (against the float model, on a few rows) with that layer
/// alone at 4 bits minus the error with all at 8; layers go to 4 bits in order of sensitivity per weight saved, least
/// first, until the weights fit the budget (HAWQ-style greedy allocation, with a measured rather than a Hessian
/// sensitivity).</summary>
internal static class MixedPrecision
{
    /// <summary>Chooses the 4-bit layers; <paramref name="build"/> writes the model with the given layers at 4 bits.</summary>
    public static (HashSet<string> FourBit, MixedPrecisionReport Report) Choose(IReadOnlyList<(string Node, string OpType, long Weights)> layers, double budget,
        Func<ISet<string>, QuantizedModel> build, Func<QuantizedModel, float[]> outputs, QuantizedModel floatModel, IChannel log)
    {
        var floatBytes = 4.0 * layers.Sum(l => l.Weights);
        double Share(ISet<string> fourBit) => layers.Sum(l => l.Weights * (fourBit.Contains(l.Node) ? 0.5 : 1.0)) / Math.Max(floatBytes, 1);
        var chosen = new HashSet<string>(StringComparer.Ordinal);
        if (Share(chosen) <= budget + 1e-12)
        {
            log.Info(MessageSensitivity.None, $"mixed precision: int8 weights take {Share(chosen):P1} of the float weights, within the budget {budget:P1}: all 8-bit.");
            return (chosen, new MixedPrecisionReport(budget, Share(chosen), Array.Empty<string>()));
        }
        var error = new OutputError(floatModel, outputs);
        double Error(ISet<string> fourBit) => error.Of(build(fourBit));
        var all8 = Error(chosen);
        var sensitivities = layers.Select(l => new LayerSensitivity(l.Node, l.OpType, Error(new HashSet<string>(StringComparer.Ordinal) { l.Node }) - all8)).ToList();
        var weights = layers.ToDictionary(l => l.Node, l => l.Weights, StringComparer.Ordinal);
        foreach (var layer in sensitivities.OrderBy(s => Math.Max(s.Sensitivity, 0) / Math.Max(weights[s.Node], 1)).ThenByDescending(s => weights[s.Node]))
        {
            if (Share(chosen) <= budget + 1e-12) break;
            chosen.Add(layer.Node);
        }
        var share = Share(chosen);
        log.Info(MessageSensitivity.None, $"mixed precision: {chosen.Count} of {layers.Count} weighted layer(s) at 4 bits; weights take {share:P1} of the float weights " +
            $"(budget {budget:P1}); most sensitive kept at 8: {string.Join(", ", sensitivities.Where(s => !chosen.Contains(s.Node)).OrderByDescending(s => s.Sensitivity).Take(4).Select(s => s.Node))}.");
        return (chosen, new MixedPrecisionReport(budget, share, layers.Where(l => chosen.Contains(l.Node)).Select(l => l.Node).ToArray())
        {
            Sensitivities = sensitivities.OrderBy(s => s.Sensitivity).ToList(),
        });
    }
}
