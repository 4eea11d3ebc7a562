using MLNetQuant.Algorithms;
using MLNetQuant.Configuration;
using MLNetQuant.Core;

namespace MLNetQuant.Export;

/// <summary>What the QDQ exporter can write, checked on the resolved plans before any training, so a config that can
/// never be saved fails in milliseconds (naming the sub-config and key) instead of after the last epoch.</summary>
internal static class ExportPreflight
{
    private const int StorageBits = 8;

    /// <exception cref="QuantConfigException">A grid the exported model cannot hold.</exception>
    public static void ThrowIfNotExportable(IReadOnlyList<LayerQuantPlan> plans, QuantAlgorithm algorithm)
    {
        foreach (var plan in plans)
            foreach (var (type, spec) in plan.Specs)
            {
                if (type == QuantType.Weight)
                {
                    var storage = algorithm.WeightStorageBits(spec.Bits);
                    if (storage > StorageBits)
                        throw new QuantConfigException(plan.ConfigIndex, "quant_bits",
                            $"{algorithm.Rules.Algorithm}'s {spec.Bits}-bit weight grid of '{plan.Name}' needs {storage} bits of integer " +
                            $"storage, and the exported model stores weights in {StorageBits} (ONNX Runtime's int8 kernels)" +
                            (storage != spec.Bits ? $"; use at most {spec.Bits - (storage - StorageBits)} bits." : "; use at most 8 bits."));
                }
                else
                {
                    if (spec.Bits > StorageBits)
                        throw new QuantConfigException(plan.ConfigIndex, "quant_bits",
                            $"the {type} of '{plan.Name}' has {spec.Bits} bits; exported activations are 8-bit at most.");
                    if (spec.Scheme.IsPerChannel())
                        throw new QuantConfigException(plan.ConfigIndex, "quant_scheme",
                            $"the {type} of '{plan.Name}' is per-channel; exported activations are per-tensor (ONNX Runtime fuses only those).");
                }
            }
    }
}
