using Onnx;
using static TorchSharp.torch;

namespace MLNetQuant.Graph;

/// <summary>ONNX element types and tensor values as TorchSharp ones (the graph executor's constants).</summary>
internal static class OnnxToTorch
{
    /// <summary>The TorchSharp type of ONNX element type <paramref name="elementType"/>.</summary>
    /// <exception cref="NotSupportedException">A type the executor does not compute in (float16, strings …).</exception>
    public static ScalarType ScalarType(long elementType, string what) => elementType switch
    {
        OnnxTensors.Float => TorchSharp.torch.ScalarType.Float32,
        OnnxTensors.Double => TorchSharp.torch.ScalarType.Float64,
        OnnxTensors.Int64 => TorchSharp.torch.ScalarType.Int64,
        OnnxTensors.Int32 => TorchSharp.torch.ScalarType.Int32,
        OnnxTensors.Bool => TorchSharp.torch.ScalarType.Bool,
        OnnxTensors.UInt8 => TorchSharp.torch.ScalarType.Byte,
        OnnxTensors.Int8 => TorchSharp.torch.ScalarType.Int8,
        _ => throw new NotSupportedException($"{what} has ONNX element type {elementType}; the TorchSharp executor computes in float, double, " +
            "int64, int32, int8, uint8 and bool."),
    };

    /// <summary>The values of <paramref name="proto"/> as a CPU tensor of its type and shape.</summary>
    public static Tensor Tensor(TensorProto proto)
    {
        var shape = proto.Dims.ToArray();
        switch (proto.DataType)
        {
            case OnnxTensors.Float:
                return tensor(OnnxTensors.Floats(proto), shape);
            case OnnxTensors.Int64:
                return tensor(OnnxTensors.Longs(proto), shape);
            case OnnxTensors.Int32:
                return tensor(OnnxTensors.Longs(proto).Select(v => (int)v).ToArray(), shape);
            case OnnxTensors.Double when proto.RawData.Length == 0:
                return tensor(proto.DoubleData.ToArray(), shape);
            case OnnxTensors.Double:
                var doubles = new double[proto.RawData.Length / 8];
                Buffer.BlockCopy(proto.RawData.ToByteArray(), 0, doubles, 0, doubles.Length * 8);
                return tensor(doubles, shape);
            case OnnxTensors.Bool or OnnxTensors.UInt8 or OnnxTensors.Int8:
            {
                // Typed storage keeps these in int32_data, one element each.
                var bytes = proto.RawData.Length > 0 ? proto.RawData.ToByteArray() : proto.Int32Data.Select(v => (byte)v).ToArray();
                if (proto.DataType == OnnxTensors.Bool) return tensor(bytes.Select(b => b != 0).ToArray(), shape);
                if (proto.DataType == OnnxTensors.UInt8) return tensor(bytes, shape);
                return tensor(bytes.Select(b => (sbyte)b).ToArray(), shape);
            }
            default:
                throw new NotSupportedException($"Initializer '{proto.Name}' has ONNX element type {proto.DataType}, which the TorchSharp executor does not read.");
        }
    }
}
