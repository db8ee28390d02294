//! Models as layer lists: the older `kind` form expands to the same layers and numbers, errors
//! name `model.layers[i].field` and say what fits, and the composed layers' gradients match
//! finite differences.

use candle_core::{Device, Tensor, Var};
use gradlab::model::{plan, LayerSpec, Mode, ModelInput, ModelSpec, Network};
use gradlab::task::Task;
use gradlab::Preset;

fn model(toml_layers: &str) -> ModelSpec {
    // the model alone: a preset would check it against its data set
    toml::from_str(&format!("layers = [\n{toml_layers}\n]\n")).unwrap()
}

fn error_of(spec: &ModelSpec, input: &ModelInput) -> String {
    match plan(spec, input) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("expected an error"),
    }
}

#[test]
fn the_kind_form_expands_to_the_same_layers_and_weights() {
    for name in ["mnist_cnn", "fashion_mnist_cnn", "mnist_mlp", "spiral_mlp", "breast_cancer_mlp"] {
        let preset = Preset::builtin(name).unwrap();
        assert!(preset.model.kind.is_some(), "{name} still uses the kind form, so this test covers it");
        let shape = gradlab::config::input_shape_hint(&preset).unwrap();
        let input = ModelInput::classify(&shape.0, shape.1);
        let list = preset.model.to_layer_list(&input.shape).unwrap();
        assert!(list.kind.is_none() && !list.layers.is_empty());
        let a = Network::new(&preset.model, &input, 7, &Device::Cpu).unwrap();
        let b = Network::new(&list, &input, 7, &Device::Cpu).unwrap();
        assert_eq!(a.params().len(), b.params().len(), "{name}");
        for ((na, va), (nb, vb)) in a.params().iter().zip(b.params()) {
            assert_eq!(na, nb, "{name}");
            let (va, vb): (Vec<f32>, Vec<f32>) =
                (va.flatten_all().unwrap().to_vec1().unwrap(), vb.flatten_all().unwrap().to_vec1().unwrap());
            assert_eq!(va, vb, "{name}: {na}");
        }
        // and the list form survives a preset file
        let mut p = preset.clone();
        p.model = list.clone();
        let back = Preset::from_toml(&p.to_toml(), "round.toml").unwrap();
        assert_eq!(back.model, list, "{name}");
        // the same outputs
        let x =
            Tensor::randn(0f32, 1.0, [3].iter().chain(input.shape.iter()).copied().collect::<Vec<_>>(), &Device::Cpu)
                .unwrap();
        let (ya, yb) = (a.forward(&x, &mut Mode::Eval).unwrap(), b.forward(&x, &mut Mode::Eval).unwrap());
        let diff = (ya - yb).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert_eq!(diff, 0.0, "{name}");
    }
}

#[test]
fn errors_name_the_layer_field_and_what_would_fit() {
    let image = ModelInput::classify(&[1, 28, 28], 10);
    let cases: &[(&str, &str, &str)] = &[
        (
            "{ type = \"conv2d\", channels = 8, kernel = 40 }, { type = \"flatten\" }, { type = \"dense\" }",
            "model.layers[0].kernel",
            "at most",
        ),
        ("{ type = \"dense\", units = 32 }, { type = \"dense\" }", "model.layers[0]", "add a flatten"),
        (
            "{ type = \"flatten\" }, { type = \"dense\", units = 0 }, { type = \"dense\" }",
            "model.layers[1].units",
            "at least 1",
        ),
        (
            "{ type = \"flatten\" }, { type = \"dense\" }, { type = \"dense\", units = 3 }",
            "model.layers[1].units",
            "only the last layer",
        ),
        ("{ type = \"flatten\" }, { type = \"dense\", units = 7 }", "model.layers[1]", "10 outputs"),
        (
            "{ type = \"maxpool\", size = 30 }, { type = \"flatten\" }, { type = \"dense\" }",
            "model.layers[0].size",
            "at most 28",
        ),
        (
            "{ type = \"flatten\" }, { type = \"dropout\", rate = 1.5 }, { type = \"dense\" }",
            "model.layers[1].rate",
            "probability",
        ),
        (
            "{ type = \"flatten\" }, { type = \"lstm\", hidden = 8 }, { type = \"dense\" }",
            "model.layers[1]",
            "put an embedding before it",
        ),
        (
            "{ type = \"flatten\" }, { type = \"embedding\", dim = 8 }, { type = \"dense\" }",
            "model.layers[1]",
            "first layer",
        ),
    ];
    for (layers, key, message) in cases {
        let e = error_of(&model(layers), &image);
        assert!(e.contains(&format!("`{key}`")) && e.contains(message), "{layers}\n -> {e}");
    }
    let tokens = ModelInput { shape: vec![20], classes: 4, vocab: Some(100), task: Task::Classify };
    let e = error_of(&model("{ type = \"embedding\", dim = 12 }, { type = \"attention\", heads = 5 }, { type = \"global_mean\" }, { type = \"dense\" }"), &tokens);
    assert!(e.contains("`model.layers[1].heads`") && e.contains("use one of 1, 2, 3, 4, 6, 12"), "{e}");
    let e = error_of(&model("{ type = \"embedding\", dim = 8 }, { type = \"gru\", hidden = 8, return_sequences = true }, { type = \"dense\" }"), &tokens);
    assert!(e.contains("`model.layers[2]`") && e.contains("add a global_mean"), "{e}");
    let e = error_of(
        &model("{ type = \"embedding\", vocab = 50, dim = 8 }, { type = \"gru\", hidden = 8 }, { type = \"dense\" }"),
        &tokens,
    );
    assert!(e.contains("`model.layers[0].vocab`") && e.contains("at least 100"), "{e}");
    let lm = ModelInput { shape: vec![20], classes: 30, vocab: Some(30), task: Task::LanguageModel };
    let e = error_of(
        &model("{ type = \"embedding\", dim = 8 }, { type = \"lstm\", hidden = 8 }, { type = \"dense\" }"),
        &lm,
    );
    assert!(e.contains("each of the 20 steps") && e.contains("return_sequences = true"), "{e}");
    let unknown =
        Preset::from_toml("[model]\nlayers = [{ type = \"lstn\", hidden = 3 }]\n", "u.toml").unwrap_err().to_string();
    assert!(unknown.contains("model.layers") && unknown.contains("lstm"), "{unknown}");
}

/// The shapes every family infers, and PyTorch's parameter names.
#[test]
fn sequence_layers_infer_shapes_and_name_parameters_as_pytorch() {
    let tokens = ModelInput { shape: vec![12], classes: 3, vocab: Some(50), task: Task::Classify };
    let spec = model(
        "{ type = \"embedding\", dim = 8 }, { type = \"lstm\", hidden = 6, bidirectional = true, layers = 2, return_sequences = true },
         { type = \"gru\", hidden = 5 }, { type = \"dense\", units = 4, activation = \"relu\" }, { type = \"dense\" }",
    );
    let planned = plan(&spec, &tokens).unwrap();
    let shapes: Vec<Vec<usize>> = planned.iter().map(|p| p.output.clone()).collect();
    assert_eq!(shapes, vec![vec![12, 8], vec![12, 12], vec![5], vec![4], vec![3]]);
    let names: Vec<String> = planned[1].params.iter().map(|p| p.name.clone()).collect();
    assert_eq!(&names[..4], ["lstm1.weight_ih_l0", "lstm1.weight_hh_l0", "lstm1.bias_ih_l0", "lstm1.bias_hh_l0"]);
    assert_eq!(names[4], "lstm1.weight_ih_l0_reverse");
    assert_eq!(planned[1].params[8].shape, vec![24, 12], "layer 2 reads both directions");
    assert_eq!(planned[2].params[0].shape, vec![15, 12]);
    let lm = ModelInput { shape: vec![16], classes: 40, vocab: Some(40), task: Task::LanguageModel };
    let spec = model(
        "{ type = \"embedding\", dim = 16 }, { type = \"position\" },
         { type = \"transformer_block\", heads = 4, ff = 32 }, { type = \"layernorm\" }, { type = \"dense\" }",
    );
    let planned = plan(&spec, &lm).unwrap();
    assert_eq!(planned.last().unwrap().output, vec![16, 40]);
    let names: Vec<&str> = planned[2].params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names[0], "block1.self_attn.in_proj_weight");
    assert!(names.contains(&"block1.linear2.bias") && names.contains(&"block1.norm2.weight"));
    assert!(matches!(planned[3].spec, LayerSpec::Layernorm(_)));
}

/// d(sum(y * g))/dθ from candle's backward against central differences, for a few entries of
/// every parameter of a small network.
fn check_gradients(spec: &ModelSpec, input: &ModelInput, x: &Tensor) {
    let net = Network::new(spec, input, 3, &Device::Cpu).unwrap();
    let y = net.forward(x, &mut Mode::Eval).unwrap();
    let g = Tensor::randn(0f32, 1.0, y.shape(), &Device::Cpu).unwrap();
    let loss = |net: &Network| -> f64 {
        let y = net.forward(x, &mut Mode::Eval).unwrap();
        f64::from((y * &g).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap())
    };
    let grads = (y * &g).unwrap().sum_all().unwrap().backward().unwrap();
    for (name, var) in net.params() {
        let analytic: Vec<f32> = grads
            .get(var)
            .unwrap_or_else(|| panic!("no gradient for {name}"))
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let mut values: Vec<f32> = var.flatten_all().unwrap().to_vec1().unwrap();
        let n = values.len();
        for k in [0, n / 3, n / 2, n - 1] {
            let h = 1e-2f32;
            let original = values[k];
            let at = |v: f32, values: &mut Vec<f32>| {
                values[k] = v;
                set(var, values);
                loss(&net)
            };
            let numeric = (at(original + h, &mut values) - at(original - h, &mut values)) / f64::from(2.0 * h);
            values[k] = original;
            set(var, &values);
            let a = f64::from(analytic[k]);
            let tol = 2e-2 * (1.0 + a.abs().max(numeric.abs()));
            assert!((a - numeric).abs() < tol, "{name}[{k}]: backward {a}, finite differences {numeric}");
        }
    }
}

fn set(var: &Var, values: &[f32]) {
    var.set(&Tensor::from_vec(values.to_vec(), var.shape(), &Device::Cpu).unwrap()).unwrap();
}

fn token_batch(batch: usize, time: usize, vocab: usize) -> Tensor {
    let ids: Vec<f32> = (0..batch * time).map(|i| ((i * 7 + 3) % vocab) as f32).collect();
    Tensor::from_vec(ids, (batch, time), &Device::Cpu).unwrap()
}

#[test]
fn attention_layernorm_embedding_and_blocks_have_the_right_gradients() {
    let lm = ModelInput { shape: vec![6], classes: 11, vocab: Some(11), task: Task::LanguageModel };
    let spec = model(
        "{ type = \"embedding\", dim = 8 }, { type = \"position\" },
         { type = \"attention\", heads = 2, causal = true }, { type = \"layernorm\" },
         { type = \"transformer_block\", heads = 2, ff = 12 }, { type = \"dense\" }",
    );
    check_gradients(&spec, &lm, &token_batch(3, 6, 11));
    let classify = ModelInput { shape: vec![5], classes: 3, vocab: Some(9), task: Task::Classify };
    for cell in ["rnn", "lstm", "gru"] {
        let spec = model(&format!(
            "{{ type = \"embedding\", dim = 4 }}, {{ type = \"{cell}\", hidden = 5, bidirectional = true, layers = 2 }}, {{ type = \"dense\" }}"
        ));
        check_gradients(&spec, &classify, &token_batch(2, 5, 9));
    }
    let spec = model("{ type = \"embedding\", dim = 4 }, { type = \"global_mean\" }, { type = \"dense\", units = 1 }");
    let binary = ModelInput { shape: vec![5], classes: 2, vocab: Some(9), task: Task::Classify };
    check_gradients(&spec, &binary, &token_batch(2, 5, 9));
}

/// A causal layer's output at a step does not depend on later steps.
#[test]
fn causal_attention_does_not_look_ahead() {
    let lm = ModelInput { shape: vec![8], classes: 20, vocab: Some(20), task: Task::LanguageModel };
    let spec = model(
        "{ type = \"embedding\", dim = 8 }, { type = \"position\" }, { type = \"transformer_block\", heads = 2 }, { type = \"dense\" }",
    );
    let net = Network::new(&spec, &lm, 1, &Device::Cpu).unwrap();
    let a = token_batch(1, 8, 20);
    let mut changed: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
    changed[6] = 19.0 - changed[6];
    let b = Tensor::from_vec(changed, (1, 8), &Device::Cpu).unwrap();
    let ya: Vec<Vec<Vec<f32>>> = net.forward(&a, &mut Mode::Eval).unwrap().to_vec3().unwrap();
    let yb: Vec<Vec<Vec<f32>>> = net.forward(&b, &mut Mode::Eval).unwrap().to_vec3().unwrap();
    assert_eq!(ya[0][..6], yb[0][..6], "steps before the change see the same");
    assert_ne!(ya[0][6], yb[0][6]);
}

/// A `preset.toml` as the older code wrote it for every run keeps its layers, names and shapes;
/// a `[model]` table without `conv` has no conv layers, as it never had.
#[test]
fn older_model_tables_plan_as_they_always_did() {
    let old = "kind = \"cnn\"\nconv = [{ channels = 8, kernel = 3, stride = 1, padding = 1, pool = 2 }]\nhidden = [16]\nactivation = \"tanh\"\ndropout = 0.25\n";
    let spec: ModelSpec = toml::from_str(old).unwrap();
    let planned = plan(&spec, &ModelInput::classify(&[1, 28, 28], 10)).unwrap();
    let params: Vec<(String, Vec<usize>)> =
        planned.iter().flat_map(|p| p.params.iter().map(|q| (q.name.clone(), q.shape.clone()))).collect();
    let expected: Vec<(String, Vec<usize>)> = [
        ("conv1.weight", vec![8, 1, 3, 3]),
        ("conv1.bias", vec![8]),
        ("fc1.weight", vec![16, 8 * 14 * 14]),
        ("fc1.bias", vec![16]),
        ("fc2.weight", vec![10, 16]),
        ("fc2.bias", vec![10]),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_string(), s))
    .collect();
    assert_eq!(params, expected);
    let kinds: Vec<&str> = planned.iter().map(|p| p.spec.type_name()).collect();
    assert_eq!(kinds, ["conv2d", "activation", "maxpool", "flatten", "dense", "activation", "dropout", "dense"]);
    for text in ["kind = \"cnn\"\nhidden = [16]\n", "hidden = [16]\n"] {
        let spec: ModelSpec = toml::from_str(text).unwrap();
        let planned = plan(&spec, &ModelInput::classify(&[1, 8, 8], 10)).unwrap();
        let names: Vec<&str> = planned.iter().filter(|p| !p.params.is_empty()).map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["fc1", "fc2"], "{text}");
    }
}

#[test]
fn ambiguous_or_double_work_layers_are_refused() {
    let image = ModelInput::classify(&[1, 28, 28], 10);
    // the loss applies the softmax (or a single output's sigmoid) itself
    let e = error_of(&model("{ type = \"flatten\" }, { type = \"dense\", activation = \"sigmoid\" }"), &image);
    assert!(e.contains("`model.layers[1].activation`") && e.contains("logits"), "{e}");
    // images run channels-last: "the last axis" of a layer norm would be ambiguous
    let e = error_of(&model("{ type = \"conv2d\", channels = 4 }, { type = \"layernorm\" }, { type = \"flatten\" }, { type = \"dense\" }"), &image);
    assert!(e.contains("`model.layers[1]`") && e.contains("add a flatten"), "{e}");
    // a task that does not fit the data is named
    let mut p = Preset::builtin("char_lm_fortunes").unwrap();
    p.task = Task::Classify;
    let e = p.validate("lm.toml").unwrap_err().to_string();
    assert!(e.contains("`task`") && e.contains("language_model"), "{e}");
    let mut p = Preset::builtin("iris_mlp").unwrap();
    p.task = Task::LanguageModel;
    let e = p.validate("iris.toml").unwrap_err().to_string();
    assert!(e.contains("`task`") && e.contains("fortunes-text"), "{e}");
}
