using MLNetQuant.Algorithms;
using MLNetQuant.Core;
using MLNetQuant.Modeling;

namespace MLNetQuant.Export;

/// <summary>A trained or calibrated layer's grids as both exporters read them (the TorchSharp network's and the
/// fine-tuned graph's): the quantizer's last parameters, checked to be exportable and recorded in the report.</summary>
internal static class LayerGrid
{
    /// <summary>The grid <paramref name="quantizer"/> last used for <paramref name="layer"/>'s <paramref name="type"/>,
    /// added to <paramref name="report"/>.</summary>
    /// <exception cref="InvalidOperationException">The layer was never run (no parameters yet).</exception>
    /// <exception cref="NotSupportedException">A per-channel activation grid (ORT fuses per-tensor activations only).</exception>
    public static QParams Read(QuantizedLayer layer, QuantType type, TensorQuantizer quantizer, List<QuantizedTensorReport> report)
    {
        var grid = quantizer.CurrentQParams() ?? throw new InvalidOperationException(
            $"The {type} of layer '{layer.Name}' has no quantization parameters yet; train or calibrate before exporting.");
        if (type != QuantType.Weight && grid.Spec.Scheme.IsPerChannel() && quantizer is not BinaryActivationQuantizer)
            throw new NotSupportedException($"Layer '{layer.Name}': per-channel activation grids are not exported (ORT fuses per-tensor activations only).");
        report.Add(new QuantizedTensorReport(layer.Name, layer.OpType, type, layer.SpecOf(type).Bits, grid.Spec.Scheme, grid.Spec.Dtype,
            grid.ScaleValues(), grid.ZeroPointValues()));
        return grid;
    }
}
