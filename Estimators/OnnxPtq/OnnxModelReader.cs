using Google.Protobuf;
using Onnx;

namespace MLNetQuant.OnnxPtq;

/// <summary>Reads the float ONNX model an option names, refusing bytes that are not an ONNX model with an error that
/// names the option (protobuf alone either throws a wire-format error or, for many byte strings, parses garbage into
/// an empty model).</summary>
internal static class OnnxModelReader
{
    public static ModelProto Read(byte[] bytes, string optionName, string? path = null)
    {
        var what = path is null ? $"{optionName} ({bytes.Length} bytes)" : $"{optionName} '{path}'";
        ModelProto model;
        try
        {
            model = ModelProto.Parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new ArgumentException($"{what} is not an ONNX model: {e.Message}", optionName, e);
        }
        if (bytes.Length == 0 || model.Graph is null || model.Graph.Node.Count == 0 || model.Graph.Output.Count == 0)
            throw new ArgumentException(
                $"{what} is not an ONNX model: it has no graph with nodes and outputs (an ONNX file starts with an ir_version " +
                "and holds a graph; was another file, a .zip or a TorchSharp .dat given?).", optionName);
        return model;
    }
}
