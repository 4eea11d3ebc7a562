using Google.Protobuf;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Transforms.Onnx;
using MLNetQuant.OnnxPtq;
using MLNetQuant.Text;
using MLNetQuant.UnitTests.Export;
using MLNetQuant.UnitTests.Graph;
using Onnx;

namespace MLNetQuant.UnitTests.OnnxPtq;

/// <summary>The text pipeline: a BERT tokenizer step, sentence pooling and L2 normalization as ONNX nodes in the
/// quantized embedder — texts in, one embedding column out.</summary>
[TestClass]
public sealed class TextPipelineTests
{
    private const int Tokens = 16;

    public TestContext TestContext { get; set; } = null!;

    public sealed class TextRow
    {
        public string Text { get; set; } = "";
    }

    public sealed class EmbeddingRow
    {
        public float[] Embedding { get; set; } = Array.Empty<float>();
    }

    // tiny_bert with its encoder's last hidden states ([batch, sequence, hidden]: what its pooler takes the first token
    // of) as an output in front of its logits.
    private static (byte[] Model, string Hidden, int Size) TinyBertWithHiddenStates()
    {
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(ZooModels.Path("tiny_bert_op13.onnx")));
        var firstToken = model.Graph.Node.Last(n => n.OpType == "Gather"); // hidden[:, 0], into the pooler's Gemm
        var pooler = model.Graph.Node.Single(n => n.OpType == "Gemm" && n.Input[0] == firstToken.Output[0]);
        var size = (int)model.Graph.Initializer.Single(t => t.Name == pooler.Input[1]).Dims[1];
        var norm = new { Output = new[] { firstToken.Input[0] } };
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "batch" });
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "sequence" });
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = size });
        model.Graph.Output.Insert(0, new ValueInfoProto
        {
            Name = norm.Output[0], Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = 1, Shape = shape } },
        });
        return (model.ToByteArray(), norm.Output[0], size);
    }

    // A WordPiece vocabulary whose ids fit tiny_bert's (0–1999): specials, then words and "##" pieces.
    private static string Vocabulary()
    {
        var path = Path.Combine(Path.GetTempPath(), $"mlnetquant-vocab-{Guid.NewGuid():N}.txt");
        var words = new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "model", "runs", "fast", "quant", "##ized", "small", ".", ",",
            "cafe", "_", "+", "u" };
        File.WriteAllLines(path, words.Concat(Enumerable.Range(words.Length, 2000 - words.Length).Select(i => $"w{i}")));
        return path;
    }

    public sealed class TokenRow
    {
        public long[] input_ids { get; set; } = Array.Empty<long>();
        public long[] attention_mask { get; set; } = Array.Empty<long>();
        public long[] token_type_ids { get; set; } = Array.Empty<long>();
    }

    private static TokenRow[] Tokenize(MLContext ml, string vocabulary, int maxTokens, params string[] texts)
    {
        var data = ml.Data.LoadFromEnumerable(texts.Select(t => new TextRow { Text = t }));
        using var tokenizer = ml.Quantization().TokenizeText(vocabulary, maxTokens: maxTokens).Fit(data);
        var schema = tokenizer.GetOutputSchema(data.Schema);
        foreach (var column in new[] { TextTokenizer.InputIdsColumn, TextTokenizer.AttentionMaskColumn, TextTokenizer.TokenTypeIdsColumn })
            Assert.AreEqual(new VectorDataViewType(NumberDataViewType.Int64, maxTokens), schema[column].Type, $"{column}: Int64 × maxTokens");
        return ml.Data.CreateEnumerable<TokenRow>(tokenizer.Transform(data), reuseRowObject: false).ToArray();
    }

    [TestMethod]
    public void Tokenizer_WritesClsTextSep_PadsWithZeros_AndTruncatesToMaxTokens()
    {
        var vocabulary = Vocabulary();
        try
        {
            var ml = new MLContext();
            var rows = Tokenize(ml, vocabulary, 8, "The quantized model runs.", "small", "zebra", string.Join(' ', Enumerable.Repeat("fast", 20)), "");
            CollectionAssert.AreEqual(new long[] { 2, 5, 9, 10, 6, 7, 12, 3 }, rows[0].input_ids, "[CLS] the quant ##ized model runs . [SEP], lower-cased");
            CollectionAssert.AreEqual(Enumerable.Repeat(1L, 8).ToArray(), rows[0].attention_mask);
            CollectionAssert.AreEqual(new long[8], rows[0].token_type_ids);
            CollectionAssert.AreEqual(new long[] { 2, 11, 3, 0, 0, 0, 0, 0 }, rows[1].input_ids);
            CollectionAssert.AreEqual(new long[] { 1, 1, 1, 0, 0, 0, 0, 0 }, rows[1].attention_mask);
            Assert.AreEqual(1L, rows[2].input_ids[1], "an unknown word is [UNK]");
            CollectionAssert.AreEqual(new long[] { 2, 8, 8, 8, 8, 8, 8, 3 }, rows[3].input_ids, "truncated before [SEP]");
            CollectionAssert.AreEqual(new long[] { 2, 3, 0, 0, 0, 0, 0, 0 }, rows[4].input_ids, "an empty text is [CLS] [SEP]");

            // Hugging Face's BertTokenizer rules, which the models were trained with: every ASCII symbol is punctuation
            // (its own token), and lower-casing strips accents.
            var hf = Tokenize(ml, vocabulary, 12, "Café model_runs U+fast");
            CollectionAssert.AreEqual(new long[] { 2, 14, 6, 15, 7, 17, 16, 8, 3, 0, 0, 0 }, hf[0].input_ids, "[CLS] cafe model _ runs u + fast [SEP]");

            var noText = ml.Data.LoadFromEnumerable(new[] { new EmbeddingRow() });
            StringAssert.Contains(Assert.Throws<Exception>(() => ml.Quantization().TokenizeText(vocabulary).Fit(noText)).Message, "Text");
            Assert.ThrowsExactly<FileNotFoundException>(() => ml.Quantization().TokenizeText("missing-vocab.txt"));
            Assert.AreEqual("maxTokens", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Quantization().TokenizeText(vocabulary, maxTokens: 1)).ParamName);
            Assert.AreEqual("inputColumnName", Assert.ThrowsExactly<ArgumentException>(() => ml.Quantization().TokenizeText(vocabulary, "input_ids")).ParamName);
        }
        finally
        {
            File.Delete(vocabulary);
        }
    }

    [TestMethod]
    public void UseOrtExtensions_KeepsTheSessionOptionsInstalled_AndRegistersOnce()
    {
        var vocabulary = Vocabulary();
        try
        {
            var ml = new MLContext();
            var created = 0;
            ml.SetOnnxSessionOption(new OnnxSessionOptions { CreateSessionOptions = () => { created++; return new SessionOptions(); } });
            OnnxInference.UseOrtExtensions(ml);
            OnnxInference.UseOrtExtensions(ml); // again (TokenizeText calls it a third time): the operators are registered once
            var rows = Tokenize(ml, vocabulary, 4, "small");
            CollectionAssert.AreEqual(new long[] { 2, 11, 3, 0 }, rows[0].input_ids);
            Assert.IsGreaterThan(0, created, "the session options installed before were used");
        }
        finally
        {
            File.Delete(vocabulary);
        }
    }

    [TestMethod]
    public void UseCpuThreads_SetsTheThreads_AndKeepsTheProviderAndExtensionsInstalled()
    {
        var vocabulary = Vocabulary();
        try
        {
            var ml = new MLContext();
            var created = 0;
            ml.SetOnnxSessionOption(new OnnxSessionOptions { CreateSessionOptions = () => { created++; return new SessionOptions(); } });
            OnnxInference.UseOrtExtensions(ml);
            OnnxInference.UseCpuThreads(ml, threads: 1);
            OnnxInference.UseOrtExtensions(ml); // already registered through the wrapped options: not again

            using (var options = ml.GetOnnxSessionOption().CreateSessionOptions()) Assert.AreEqual(1, options.IntraOpNumThreads);
            var rows = Tokenize(ml, vocabulary, 4, "small"); // the tokenizer step needs the extensions' operators
            CollectionAssert.AreEqual(new long[] { 2, 11, 3, 0 }, rows[0].input_ids);
            Assert.IsGreaterThan(1, created, "the session options installed first were used");

            using var sleeping = OnnxInference.CreateCpuSessionOptions(threads: 3);
            Assert.AreEqual(3, sleeping.IntraOpNumThreads);
            Assert.AreEqual("threads", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => OnnxInference.CreateCpuSessionOptions(-1)).ParamName);
            Assert.AreEqual("threads", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => OnnxInference.UseCpuThreads(ml, -2)).ParamName);
        }
        finally
        {
            File.Delete(vocabulary);
        }
    }

    [TestMethod]
    public void MeanPooling_InTheModel_EqualsPoolingTheHiddenStates_AndIsUnitLength()
    {
        var ml = new MLContext(seed: 1);
        var (model, hidden, size) = TinyBertWithHiddenStates();
        var rows = ZooModels.Tokens(6, 4);
        var data = ml.Data.LoadFromEnumerable(rows);
        using var plain = ml.Quantization().Dynamic(new DynamicQuantizationOptions { ModelBytes = model, OutputColumns = { [hidden] = "Hidden" } }).Fit(data);
        using var pooled = ml.Quantization().Dynamic(new DynamicQuantizationOptions { ModelBytes = model, Pooling = SentencePooling.Mean, ScoreColumnName = "Embedding" }).Fit(data);
        using var cls = ml.Quantization().Dynamic(new DynamicQuantizationOptions
        {
            ModelBytes = model, Pooling = SentencePooling.Cls, NormalizeEmbeddings = false, ScoreColumnName = "Embedding",
        }).Fit(data);

        var states = plain.Transform(data).GetColumn<float[]>("Hidden").ToArray();
        var embeddings = pooled.Transform(data).GetColumn<float[]>("Embedding").ToArray();
        var first = cls.Transform(data).GetColumn<float[]>("Embedding").ToArray();
        for (var r = 0; r < rows.Length; r++)
        {
            Assert.HasCount(size, embeddings[r]);
            var mean = new double[size];
            var count = rows[r].attention_mask.Sum();
            for (var t = 0; t < Tokens; t++)
                if (rows[r].attention_mask[t] == 1)
                    for (var h = 0; h < size; h++) mean[h] += states[r][t * size + h] / count;
            var norm = Math.Sqrt(mean.Sum(v => v * v));
            for (var h = 0; h < size; h++)
            {
                Assert.AreEqual(mean[h] / norm, embeddings[r][h], 1e-5, $"row {r}, value {h}: masked mean, L2-normalized");
                Assert.AreEqual(states[r][h], first[r][h], 1e-6, $"row {r}, value {h}: the [CLS] token's state");
            }
            Assert.AreEqual(1.0, Math.Sqrt(embeddings[r].Sum(v => (double)v * v)), 1e-5);
        }
    }

    [TestMethod]
    public void TextPipeline_TokenizesEmbedsAndPredicts_AndItsZipReproducesItInAProcessWithoutMLNetQuant()
    {
        var vocabulary = Vocabulary();
        var zip = Path.Combine(Path.GetTempPath(), $"mlnetquant-embedder-{Guid.NewGuid():N}.zip");
        try
        {
            var ml = new MLContext(seed: 1);
            var (model, _, size) = TinyBertWithHiddenStates();
            var texts = new[] { "The model runs fast.", "A small quantized model.", "the the the", "" }.Select(t => new TextRow { Text = t }).ToArray();
            var data = ml.Data.LoadFromEnumerable(texts);
            var pipeline = ml.Quantization().TokenizeText(vocabulary, maxTokens: Tokens)
                .Append(ml.Quantization().Int4(new Int4QuantizationOptions { ModelBytes = model, BlockSize = 16, Pooling = SentencePooling.Mean, ScoreColumnName = "Embedding" }));
            var fitted = pipeline.Fit(data);
            var embeddings = fitted.Transform(data).GetColumn<float[]>("Embedding").ToArray();
            Assert.IsTrue(embeddings.All(e => e.Length == size && Math.Abs(Math.Sqrt(e.Sum(v => (double)v * v)) - 1) < 1e-4), "unit-length embeddings");
            Assert.IsLessThan(0.9999, ZooModels.Cosine(embeddings[0], embeddings[2]), "different texts, different embeddings");

            var engine = ml.Model.CreatePredictionEngine<TextRow, EmbeddingRow>(fitted);
            CollectionAssert.AreEqual(embeddings[1], engine.Predict(texts[1]).Embedding, "PredictionEngine gives Transform's values");

            // The whole pipeline, tokenizer included, in one .zip; production: another process with ML.NET, ONNX Runtime
            // and its Extensions only.
            ml.Model.Save(fitted, data.Schema, zip);
            var (reloaded, log) = ProductionProcess.Embed(zip, texts.Select(t => t.Text).ToArray(), "Embedding");
            StringAssert.Contains(log, "torch or mlnetquant assemblies loaded: []");
            for (var r = 0; r < texts.Length; r++) CollectionAssert.AreEqual(embeddings[r], reloaded[r], $"row {r} after reload");
        }
        finally
        {
            File.Delete(vocabulary);
            File.Delete(zip);
        }
    }

    [TestMethod]
    public void TextInput_TokenizesInsideTheModel_AtEachTextsOwnLength_AndGivesThePaddedPipelinesEmbeddings()
    {
        var vocabulary = Vocabulary();
        var zip = Path.Combine(Path.GetTempPath(), $"mlnetquant-textinput-{Guid.NewGuid():N}.zip");
        try
        {
            var ml = new MLContext(seed: 1);
            var (model, _, size) = TinyBertWithHiddenStates();
            var texts = new[] { "The model runs fast.", "A small quantized model.", "the the the", "", "fast , fast . quant ##ized" }
                .Select(t => new TextRow { Text = t }).ToArray();
            var data = ml.Data.LoadFromEnumerable(texts);
            Int4QuantizationOptions Options() => new() { ModelBytes = model, BlockSize = 16, Pooling = SentencePooling.Mean, ScoreColumnName = "Embedding" };
            var padded = ml.Quantization().TokenizeText(vocabulary, maxTokens: Tokens).Append(ml.Quantization().Int4(Options())).Fit(data);
            var fusedOptions = Options();
            fusedOptions.TextInput = new TextInputOptions { VocabularyPath = vocabulary, MaxTokens = Tokens };
            var fusedEstimator = ml.Quantization().Int4(fusedOptions);
            Assert.IsTrue(fusedEstimator.GetOutputSchema(SchemaShapes.Of(data.Schema)).Any(c => c.Name == "Embedding"), "the schema reads the text column");
            using var fused = fusedEstimator.Fit(data);

            var expected = padded.Transform(data).GetColumn<float[]>("Embedding").ToArray();
            var actual = fused.Transform(data).GetColumn<float[]>("Embedding").ToArray();
            for (var r = 0; r < texts.Length; r++)
            {
                Assert.HasCount(size, actual[r]);
                var worst = expected[r].Zip(actual[r]).Max(p => Math.Abs(p.First - p.Second));
                Assert.IsLessThan(1e-4f, worst, $"row {r}: the same embedding without padding (largest difference {worst:E1})");
            }
            var graph = ModelProto.Parser.ParseFrom(fused.GetOnnxBytes()).Graph;
            CollectionAssert.AreEqual(new[] { "Text" }, graph.Input.Select(i => i.Name).ToArray(), "one text input");
            Assert.IsFalse(graph.Node.Any(n => n.OpType == "Pad"), "no padding: each text runs at its own length");

            ml.Model.Save(fused, data.Schema, zip);
            var (reloaded, log) = ProductionProcess.Embed(zip, texts.Select(t => t.Text).ToArray(), "Embedding");
            StringAssert.Contains(log, "torch or mlnetquant assemblies loaded: []");
            for (var r = 0; r < texts.Length; r++) CollectionAssert.AreEqual(actual[r], reloaded[r], $"row {r} after reload in another process");

            var noText = ml.Data.LoadFromEnumerable(new[] { new EmbeddingRow() });
            StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => ml.Quantization().Int4(fusedOptions).Fit(noText)).Message, "'Text'");
            StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => fusedEstimator.GetOutputSchema(SchemaShapes.Of(noText.Schema))).Message, "'Text'");
            fusedOptions.TextInput.VocabularyPath = "missing-vocab.txt";
            Assert.ThrowsExactly<FileNotFoundException>(() => ml.Quantization().Int4(fusedOptions));
            fusedOptions.TextInput = new TextInputOptions { VocabularyPath = vocabulary, TextColumnName = "input_ids" };
            Assert.AreEqual("TextInput", Assert.ThrowsExactly<ArgumentException>(() => ml.Quantization().Int4(fusedOptions)).ParamName,
                "a token column cannot be the text column, refused when the estimator is made");
            fusedOptions.TextInput = new TextInputOptions { VocabularyPath = vocabulary, MaxTokens = 1 };
            Assert.AreEqual("TextInput", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Quantization().Int4(fusedOptions)).ParamName);
        }
        finally
        {
            File.Delete(vocabulary);
            File.Delete(zip);
        }
    }

    [TestMethod]
    public void PoolingOptions_ThatDoNotFitTheModel_AreNamed()
    {
        var ml = new MLContext(seed: 1);
        var (model, hidden, _) = TinyBertWithHiddenStates();
        var path = ZooModels.Path("tiny_bert_op13.onnx");
        Assert.AreEqual("Pooling", Assert.ThrowsExactly<ArgumentException>(() =>
            ml.Quantization().Dynamic(new DynamicQuantizationOptions { ModelPath = path, Pooling = SentencePooling.Mean })).ParamName, "logits are not hidden states");
        Assert.AreEqual("AttentionMaskInput", Assert.ThrowsExactly<ArgumentException>(() =>
            ml.Quantization().Dynamic(new DynamicQuantizationOptions { ModelBytes = model, Pooling = SentencePooling.Mean, AttentionMaskInput = "mask" })).ParamName);
        Assert.AreEqual("HiddenStateOutput", Assert.ThrowsExactly<ArgumentException>(() =>
            ml.Quantization().Dynamic(new DynamicQuantizationOptions { ModelBytes = model, Pooling = SentencePooling.Cls, HiddenStateOutput = "nope" })).ParamName);
        var named = ml.Quantization().Dynamic(new DynamicQuantizationOptions { ModelBytes = model, Pooling = SentencePooling.Cls, HiddenStateOutput = hidden });
        Assert.IsNotNull(named);
    }
}
