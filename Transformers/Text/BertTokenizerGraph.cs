using Google.Protobuf;
using Onnx;

namespace MLNetQuant.Text;

/// <summary>Writes the BERT tokenizer as ONNX nodes: ONNX Runtime Extensions' <c>BertTokenizer</c> operator (domain
/// <c>ai.onnx.contrib</c>; Hugging Face's BertTokenizer — basic tokenization, then WordPiece over the vocabulary the
/// node carries as an attribute) on one text ([1, 1]: what ML.NET feeds for a text column), then standard ops: either
/// zero-padding of its three outputs to maxTokens (<see cref="Build"/>, the <c>TokenizeText</c> step's own model), or
/// a leading batch axis so they feed a text encoder's token inputs at the text's own length (<see cref="Prepend"/>).</summary>
/// <remarks>Why ONNX and not a C# tokenizer: an ONNX model is what ML.NET's own OnnxTransformer saves into and loads
/// from a .zip, so the tokenizer travels with the embedder and production needs no MLNetQuant.</remarks>
internal static class BertTokenizerGraph
{
    /// <summary>The operator domain of ONNX Runtime Extensions.</summary>
    public const string ExtensionsDomain = "ai.onnx.contrib";

    /// <summary>The tokenizer step's model: text in, ids, mask and segment ids out, each an Int64 vector of maxTokens.</summary>
    /// <param name="vocabulary">vocab.txt's content: one token per line, line i is id i.</param>
    /// <param name="maxTokens">Tokens per row, [CLS] and [SEP] included: longer texts are truncated (before [SEP]).</param>
    /// <param name="lowerCase">Lower-case and strip accents first (uncased models; Hugging Face's default ties the two).</param>
    /// <param name="textName">The graph input's name: the text column's.</param>
    /// <param name="outputNames">The graph outputs' names: ids, mask, segment ids.</param>
    public static byte[] Build(string vocabulary, int maxTokens, bool lowerCase, string textName,
        (string InputIds, string AttentionMask, string TokenTypeIds) outputNames)
    {
        var graph = new GraphProto { Name = "bert_tokenizer" };
        graph.Input.Add(Value(textName, TensorProto.Types.DataType.String, 1, 1));
        var (ids, types, mask) = Tokenize(graph, vocabulary, maxTokens, lowerCase, textName);
        graph.Initializer.Add(Int64s("tokenizer.max_tokens", maxTokens));
        graph.Initializer.Add(Int64s("tokenizer.no_leading_pad", 0));
        // pads = [0, maxTokens − tokens]: zeros after the text, so every row is maxTokens long (mask 0 there).
        graph.Node.Add(Node("Shape", new[] { ids }, "tokenizer.count"));
        graph.Node.Add(Node("Sub", new[] { "tokenizer.max_tokens", "tokenizer.count" }, "tokenizer.padding"));
        var pads = Node("Concat", new[] { "tokenizer.no_leading_pad", "tokenizer.padding" }, "tokenizer.pads");
        pads.Attribute.Add(Int("axis", 0));
        graph.Node.Add(pads);
        foreach (var (source, name) in new[] { (ids, outputNames.InputIds), (mask, outputNames.AttentionMask), (types, outputNames.TokenTypeIds) })
        {
            graph.Node.Add(Node("Pad", new[] { source, "tokenizer.pads" }, name));
            graph.Output.Add(Value(name, TensorProto.Types.DataType.Int64, maxTokens));
        }
        var model = new ModelProto { IrVersion = 8, ProducerName = "MLNetQuant", Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = ExtensionsDomain, Version = 1 });
        return model.ToByteArray();
    }

    /// <summary>Puts the tokenizer in front of <paramref name="model"/>'s token inputs: the graph input
    /// <paramref name="textName"/> (string [1, 1]) replaces each of <paramref name="tokenInputs"/> (ids, mask, segment
    /// ids, by the model's input names; null where the model has none), which become [1, tokens] tensors of the text's
    /// own length.</summary>
    /// <exception cref="ArgumentException">A named input the model does not have, or a text input name it already uses.</exception>
    public static void Prepend(ModelProto model, string vocabulary, int maxTokens, bool lowerCase, string textName,
        (string? InputIds, string? AttentionMask, string? TokenTypeIds) tokenInputs)
    {
        var graph = model.Graph;
        var taken = graph.Node.SelectMany(n => n.Output).Concat(graph.Input.Select(i => i.Name)).Concat(graph.Initializer.Select(t => t.Name)).ToHashSet(StringComparer.Ordinal);
        if (taken.Contains(textName) || taken.Any(n => n.StartsWith("tokenizer.", StringComparison.Ordinal)))
            throw new ArgumentException($"The model already has a tensor named '{textName}' or 'tokenizer.*'; name the text column otherwise.", nameof(textName));
        var prefix = new GraphProto();
        prefix.Input.Add(Value(textName, TensorProto.Types.DataType.String, 1, 1));
        var (ids, types, mask) = Tokenize(prefix, vocabulary, maxTokens, lowerCase, textName);
        var opset = model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(1).Max();
        if (opset >= 13) prefix.Initializer.Add(Int64s("tokenizer.batch_axis", 0));
        foreach (var (source, input) in new[] { (ids, tokenInputs.InputIds), (mask, tokenInputs.AttentionMask), (types, tokenInputs.TokenTypeIds) })
        {
            if (input is null) continue;
            var declared = graph.Input.SingleOrDefault(i => i.Name == input) ?? throw new ArgumentException(
                $"The model has no input '{input}' for the tokenizer to feed; its inputs are {string.Join(", ", graph.Input.Select(i => $"'{i.Name}'"))}.", nameof(tokenInputs));
            graph.Input.Remove(declared);
            var unsqueeze = Node("Unsqueeze", opset >= 13 ? new[] { source, "tokenizer.batch_axis" } : new[] { source }, input);
            unsqueeze.Name = $"tokenizer.unsqueeze.{input}";
            if (opset < 13) unsqueeze.Attribute.Add(new AttributeProto { Name = "axes", Type = AttributeProto.Types.AttributeType.Ints, Ints = { 0L } });
            prefix.Node.Add(unsqueeze);
        }
        graph.Input.Insert(0, prefix.Input[0]);
        graph.Initializer.AddRange(prefix.Initializer);
        var nodes = prefix.Node.Concat(graph.Node).ToList();
        graph.Node.Clear();
        graph.Node.AddRange(nodes);
        if (model.OpsetImport.All(o => o.Domain != ExtensionsDomain))
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = ExtensionsDomain, Version = 1 });
    }

    // Reshape to one string, then BertTokenizer: returns the 1-D ids, segment ids and mask.
    private static (string Ids, string Types, string Mask) Tokenize(GraphProto graph, string vocabulary, int maxTokens, bool lowerCase, string textName)
    {
        graph.Initializer.Add(Int64s("tokenizer.flat", -1));
        graph.Node.Add(Node("Reshape", new[] { textName, "tokenizer.flat" }, "tokenizer.text"));
        var tokenize = Node("BertTokenizer", new[] { "tokenizer.text" }, "tokenizer.ids", "tokenizer.types", "tokenizer.mask");
        tokenize.Domain = ExtensionsDomain;
        tokenize.Attribute.Add(new AttributeProto { Name = "vocab_file", Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(vocabulary) });
        tokenize.Attribute.Add(Int("do_lower_case", lowerCase ? 1 : 0));
        tokenize.Attribute.Add(Int("strip_accents", lowerCase ? 1 : 0));
        tokenize.Attribute.Add(Int("max_length", maxTokens));
        graph.Node.Add(tokenize);
        return ("tokenizer.ids", "tokenizer.types", "tokenizer.mask");
    }

    private static NodeProto Node(string op, string[] inputs, params string[] outputs)
    {
        var node = new NodeProto { OpType = op, Name = outputs[0] };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        return node;
    }

    private static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    private static TensorProto Int64s(string name, long value)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        tensor.Dims.Add(1);
        tensor.Int64Data.Add(value);
        return tensor;
    }

    private static ValueInfoProto Value(string name, TensorProto.Types.DataType type, params long[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var dim in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = dim });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } } };
    }
}
