using MLNetQuant.Core;

namespace MLNetQuant.Export;

/// <summary>Quantization annotations on the edges of an ONNX graph, PT2E's idea: which tensors are quantized on which
/// grid and which weights become integers. Two producers write them — the post-training quantizer (from calibration)
/// and the trained-graph exporter (from the quantizers of a fine-tuned graph) — and one consumer,
/// <see cref="QdqGraphRewriter"/>, turns them into Q/DQ.</summary>
internal sealed class QdqAnnotations
{
    /// <summary>Tensors requantized where they are produced, so every reader sees the grid: a calibrated activation, or
    /// the output a trained quantizer replaced for all readers. A graph input has no producer: only the readers
    /// annotated in <see cref="Inputs"/> read it quantized.</summary>
    public Dictionary<string, QParams> Tensors { get; } = new(StringComparer.Ordinal);

    /// <summary>Node inputs read on a grid (by node name and input index) while other readers of the same tensor may
    /// read it float: a trained layer's input quantizer.</summary>
    public Dictionary<(string Node, int Input), QParams> Inputs { get; } = new();

    /// <summary>Tensors replaced by their sign with 0 → +1 (BNN's binary activations; no rounding QuantizeLinear can
    /// express it).</summary>
    public HashSet<string> Binarized { get; } = new(StringComparer.Ordinal);

    /// <summary>Nodes whose constant weight (input 1) becomes integers with a DequantizeLinear.</summary>
    public Dictionary<string, QuantizedWeight> Weights { get; } = new(StringComparer.Ordinal);

    /// <summary>What the producer quantized, for the model's report.</summary>
    public List<QuantizedTensorReport> Report { get; } = new();
}

/// <summary>A weight on its integer grid.</summary>
/// <param name="Ints">The integers, in the weight's layout.</param>
/// <param name="Scales">One scale per channel along <paramref name="Axis"/> (or one).</param>
/// <param name="ZeroPoints">One zero-point per scale.</param>
/// <param name="Signed">int8 storage (else uint8).</param>
/// <param name="Shape">The weight's shape.</param>
/// <param name="Axis">The channel axis of the scales.</param>
internal sealed record QuantizedWeight(int[] Ints, float[] Scales, long[] ZeroPoints, bool Signed, long[] Shape, int Axis)
{
    /// <summary>Store the integers as packed signed 4-bit values (two per byte, unpacked by standard ops that ONNX
    /// Runtime folds into a float weight at load): half the bytes of int8 storage, at the cost of the integer kernel
    /// (ORT's CPU integer convolutions and GEMMs take int8 weights only, so the node runs in float on the restored
    /// weight). Every integer must lie in −8…7, zero-points 0.</summary>
    public bool PackedInt4 { get; init; }
}
