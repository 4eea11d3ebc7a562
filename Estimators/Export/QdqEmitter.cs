using Onnx;
using MLNetQuant.Graph;
namespace MLNetQuant.Onnx;

/// <summary>The QDQ building blocks ONNX Runtime fuses into integer kernels, written through an
/// <see cref="OnnxGraphBuilder"/>: activation QuantizeLinear→DequantizeLinear pairs, quantized weight initializers
/// with DequantizeLinear, int32 biases. Shared by the exporter of trained networks and the post-training quantizer of
/// ONNX models, so there is one QDQ writer.</summary>
internal sealed class QdqEmitter
{
    public QdqEmitter(OnnxGraphBuilder onnx) => Onnx = onnx;

    /// <summary>The graph being written.</summary>
    public OnnxGraphBuilder Onnx { get; }

    /// <summary>QuantizeLinear→DequantizeLinear of <paramref name="tensor"/> on a per-tensor grid; a grid narrower than
    /// its 8-bit storage gets a Clip to its real range first, so QuantizeLinear saturates where fake quantization
    /// does. Returns the dequantized tensor's name.</summary>
    public string QuantizeDequantize(string tensor, float scale, long zeroPoint, QuantRange range, bool signed, string name)
    {
        var source = tensor;
        var storage = signed ? (Min: -128L, Max: 127L) : (Min: 0L, Max: 255L);
        if (range.QMin > storage.Min || range.QMax < storage.Max)
            source = Clip($"{name}.clip", source, (range.QMin - zeroPoint) * scale, (range.QMax - zeroPoint) * scale);
        var scaleName = Onnx.Initializer($"{name}.scale", new[] { scale });
        var zeroName = signed
            ? Onnx.Initializer($"{name}.zero_point", new[] { (sbyte)zeroPoint })
            : Onnx.Initializer($"{name}.zero_point", new[] { (byte)zeroPoint });
        var q = Onnx.Node("QuantizeLinear", $"{name}.q", new[] { source, scaleName, zeroName });
        return Onnx.Node("DequantizeLinear", $"{name}.dq", new[] { q, scaleName, zeroName });
    }

    /// <summary>An 8-bit weight initializer (int8 when <paramref name="signed"/>, else uint8) of the given integers and
    /// its DequantizeLinear with one scale and zero-point per channel along <paramref name="axis"/>; with
    /// <paramref name="packInt4"/>, packed signed 4-bit storage (see QuantizedWeight.PackedInt4).</summary>
    public string DequantizedWeight(string name, int[] ints, float[] scales, long[] zeroPoints, bool signed, long[] shape, long axis, bool packInt4 = false)
    {
        if (packInt4)
        {
            if (!signed || ints.Any(v => v is < -8 or > 7) || zeroPoints.Any(z => z is < -8 or > 7))
                throw new InvalidOperationException($"Weight of '{name}': packed int4 storage takes signed values in -8…7 only.");
            return PackedInt4Weight(name, ints, scales, zeroPoints, shape, axis);
        }
        var channels = scales.Length;
        string stored, zero;
        if (signed)
        {
            stored = Onnx.Initializer($"{name}.weight_quantized", ints.Select(v => (sbyte)v).ToArray(), shape);
            zero = Onnx.Initializer($"{name}.weight_zero_point", zeroPoints.Select(v => (sbyte)v).ToArray(), channels);
        }
        else
        {
            stored = Onnx.Initializer($"{name}.weight_quantized", ints.Select(v => (byte)v).ToArray(), shape);
            zero = Onnx.Initializer($"{name}.weight_zero_point", zeroPoints.Select(v => (byte)v).ToArray(), channels);
        }
        var scale = Onnx.Initializer($"{name}.weight_scale", scales, channels);
        return Onnx.Node("DequantizeLinear", $"{name}.weight", new[] { stored, scale, zero }, new Dictionary<string, object> { ["axis"] = axis });
    }

    // Signed 4-bit integers stored two per byte (low nibble first) in a uint8 initializer, unpacked by standard opset-13
    // ops that ONNX Runtime folds into a float weight when it loads the model: code = nibble − 16·(nibble > 7),
    // weight = code · scale[channel]. Neither ONNX's INT4 type (opset 21) nor ORT's com.microsoft DequantizeLinear,
    // which takes it in older graphs, will do: ML.NET's OnnxTransformer reads every initializer's element type and
    // refuses INT4 ("Unsupported ONNX scalar type: 22").
    private string PackedInt4Weight(string name, int[] ints, float[] scales, long[] zeroPoints, long[] shape, long axis)
    {
        if (zeroPoints.Any(z => z != 0)) throw new InvalidOperationException($"Weight of '{name}': packed int4 storage is symmetric (zero-point 0).");
        var bytes = new byte[(ints.Length + 1) / 2];
        for (var i = 0; i < ints.Length; i++) bytes[i / 2] |= (byte)((ints[i] & 0xF) << (4 * (i % 2)));
        var packed = Onnx.Initializer($"{name}.weight_int4_packed", bytes, bytes.Length);
        var wide = Onnx.Node("Cast", $"{name}.weight_unpack.cast", new[] { packed }, new Dictionary<string, object> { ["to"] = (long)OnnxTensors.Int32 });
        var sixteen = Shared("int4_unpack.sixteen", () => Onnx.Initializer("int4_unpack.sixteen", new[] { 16 }, 1));
        var low = Onnx.Node("Mod", $"{name}.weight_unpack.low", new[] { wide, sixteen });
        var high = Onnx.Node("Div", $"{name}.weight_unpack.high", new[] { wide, sixteen });
        var axis1 = Shared("int4_unpack.axis", () => Onnx.Initializer("int4_unpack.axis", new[] { 1L }, 1));
        var pairs = Onnx.Node("Concat", $"{name}.weight_unpack.pairs", new[]
        {
            Onnx.Node("Unsqueeze", $"{name}.weight_unpack.low_column", new[] { low, axis1 }),
            Onnx.Node("Unsqueeze", $"{name}.weight_unpack.high_column", new[] { high, axis1 }),
        }, new Dictionary<string, object> { ["axis"] = 1L });
        var flat = Onnx.Node("Reshape", $"{name}.weight_unpack.flat", new[] { pairs, Shared("int4_unpack.flat", () => Onnx.Initializer("int4_unpack.flat", new[] { -1L }, 1)) });
        if (ints.Length % 2 == 1)
            flat = Onnx.Node("Slice", $"{name}.weight_unpack.trim", new[] { flat, Shared("int4_unpack.start", () => Onnx.Initializer("int4_unpack.start", new[] { 0L }, 1)),
                Onnx.Initializer($"{name}.weight_unpack.end", new[] { (long)ints.Length }, 1) });
        var negative = Onnx.Node("Cast", $"{name}.weight_unpack.negative", new[]
        {
            Onnx.Node("Greater", $"{name}.weight_unpack.above7", new[] { flat, Shared("int4_unpack.seven", () => Onnx.Initializer("int4_unpack.seven", new[] { 7 }, 1)) }),
        }, new Dictionary<string, object> { ["to"] = (long)OnnxTensors.Int32 });
        var codes = Onnx.Node("Sub", $"{name}.weight_unpack.codes", new[] { flat, Onnx.Node("Mul", $"{name}.weight_unpack.wrap", new[] { negative, sixteen }) });
        var shaped = Onnx.Node("Reshape", $"{name}.weight_unpack.shaped", new[]
        {
            Onnx.Node("Cast", $"{name}.weight_unpack.float", new[] { codes }, new Dictionary<string, object> { ["to"] = (long)OnnxTensors.Float }),
            Onnx.Initializer($"{name}.weight_unpack.shape", shape, shape.Length),
        });
        // One scale per channel along the axis, broadcast over the other dimensions.
        var scaleShape = shape.Select((_, d) => d == axis ? (long)scales.Length : 1L).ToArray();
        return Onnx.Node("Mul", $"{name}.weight", new[] { shaped, Onnx.Initializer($"{name}.weight_scale", scales, scaleShape) });
    }

    // A constant every unpacking subgraph reads, written once per model.
    private readonly Dictionary<string, string> _shared = new(StringComparer.Ordinal);

    private string Shared(string key, Func<string> create) => _shared.TryGetValue(key, out var name) ? name : _shared[key] = create();

    /// <summary>An int32 bias with scale s_in·s_w[c] and zero-point 0 (what ORT's integer kernels take) and its
    /// DequantizeLinear.</summary>
    public string Int32Bias(string name, float[] bias, float inputScale, float[] weightScales)
    {
        var scales = bias.Select((_, c) => inputScale * weightScales[weightScales.Length == 1 ? 0 : c]).ToArray();
        var ints = bias.Select((b, c) => (int)Math.Clamp(Math.Round(b / (double)scales[c], MidpointRounding.ToEven), int.MinValue, int.MaxValue)).ToArray();
        var stored = Onnx.Initializer($"{name}.bias_quantized", ints, ints.Length);
        var scale = Onnx.Initializer($"{name}.bias_scale", scales, scales.Length);
        var zero = Onnx.Initializer($"{name}.bias_zero_point", new int[scales.Length], scales.Length);
        return Onnx.Node("DequantizeLinear", $"{name}.bias", new[] { stored, scale, zero }, new Dictionary<string, object> { ["axis"] = 0L });
    }

    /// <summary>Clip(<paramref name="input"/>, min, max).</summary>
    public string Clip(string name, string input, float min, float max)
    {
        var low = Onnx.Initializer($"{name}.min", new[] { min });
        var high = Onnx.Initializer($"{name}.max", new[] { max });
        return Onnx.Node("Clip", name, new[] { input, low, high });
    }
}
