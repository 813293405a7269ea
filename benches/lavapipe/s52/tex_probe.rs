//! Session 52 (lavapipe, this machine): the CPU adapters' decode product
//! (`shaders/linear_words.wgsl`, one row, unchecked like the engine's) in three forms: f16
//! weights and x from storage buffers, as the engine runs it; the weights from an
//! `rgba32uint` texture (`textureLoad`, texel t at (t % 8192, t / 8192)); weights and x
//! (`rgba32float`, 4 values a texel) from textures. Not built by cargo (benches/ only
//! discovers its top-level files): to run it, copy it to examples/tex_probe.rs, change the
//! two `include_str!` paths to `../shaders/…`, and `cargo run --release --example tex_probe`.
//! Prints each shape's time a dispatch (the median of 7 submits of 10 dispatches, after one
//! untimed) and asserts that every form wrote the same outputs (bit for bit).
use std::time::Instant;
use wgpu::util::DeviceExt;

const TW: u32 = 8192;

fn main() {
    moa::runtime::wgpu::ensure_xdg_runtime_dir();
    let ctx = moa::runtime::wgpu::WgpuContext::new().unwrap();
    let (dev, q) = (ctx.device(), ctx.queue());
    println!("adapter {}", ctx.adapter_name());
    let params_src = include_str!("../../../shaders/product_params.wgsl");
    let words_src = include_str!("../../../shaders/linear_words.wgsl");
    let head = "enable f16;\nalias wtype = f16;\nalias xtype = f32;\n";
    let buf_src = format!("{head}{params_src}{words_src}");
    let tex_src = buf_src
        .replace(
            "@group(0) @binding(2) var<storage, read> w: array<vec4<u32>>;",
            "@group(0) @binding(2) var w: texture_2d<u32>;",
        )
        .replace(
            "let q = w[(col * params.k + i) / 8u];",
            &format!("let t = (col * params.k + i) / 8u;\n    let q = textureLoad(w, vec2<u32>(t % {TW}u, t / {TW}u), 0);"),
        );
    assert_ne!(buf_src, tex_src);
    let tex2_src = tex_src
        .replace(
            "@group(0) @binding(1) var<storage, read> x: array<xtype>;",
            "@group(0) @binding(1) var x: texture_2d<f32>;",
        )
        .replace(
            "let o = row * params.k + i;\n    return vec4<f32>(f32(x[o]), f32(x[o + 1u]), f32(x[o + 2u]), f32(x[o + 3u]));",
            "let o = (row * params.k + i) / 4u;\n    return textureLoad(x, vec2<u32>(o % 8192u, o / 8192u), 0);",
        );
    assert_ne!(tex_src, tex2_src);
    for (name, n, k) in [("qkv", 960u32, 576u32), ("gate_up", 3072, 576), ("down", 576, 1536), ("head", 49152, 576)] {
        let texels = (n * k / 8) as usize;
        let h = texels.div_ceil(TW as usize) as u32;
        let mut wdata: Vec<u32> = (0..(TW * h * 4) as usize)
            .map(|i| {
                let a = half::f16::from_f32(((i * 7919 % 1000) as f32 - 500.0) / 2000.0).to_bits() as u32;
                let b = half::f16::from_f32(((i * 104729 % 1000) as f32 - 500.0) / 2000.0).to_bits() as u32;
                a | (b << 16)
            })
            .collect();
        wdata.truncate((TW * h * 4) as usize);
        let wbuf = dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytemuck::cast_slice(&wdata[..texels * 4]),
            usage: wgpu::BufferUsages::STORAGE,
        });
        let tex = dev.create_texture_with_data(
            q,
            &wgpu::TextureDescriptor {
                label: None,
                size: wgpu::Extent3d { width: TW, height: h, depth_or_array_layers: 1 },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format: wgpu::TextureFormat::Rgba32Uint,
                usage: wgpu::TextureUsages::TEXTURE_BINDING,
                view_formats: &[],
            },
            wgpu::util::TextureDataOrder::LayerMajor,
            bytemuck::cast_slice(&wdata),
        );
        let view = tex.create_view(&Default::default());
        let x: Vec<f32> = (0..k).map(|i| ((i * 31 % 97) as f32 - 48.0) / 50.0).collect();
        let xbuf = dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytemuck::cast_slice(&x),
            usage: wgpu::BufferUsages::STORAGE,
        });
        let xtex = dev.create_texture_with_data(
            q,
            &wgpu::TextureDescriptor {
                label: None,
                size: wgpu::Extent3d { width: k / 4, height: 1, depth_or_array_layers: 1 },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format: wgpu::TextureFormat::Rgba32Float,
                usage: wgpu::TextureUsages::TEXTURE_BINDING,
                view_formats: &[],
            },
            wgpu::util::TextureDataOrder::LayerMajor,
            bytemuck::cast_slice(&x),
        );
        let xview = xtex.create_view(&Default::default());
        let res = dev.create_buffer(&wgpu::BufferDescriptor { label: None, size: n as u64 * 4, usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false });
        let pbuf = dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytemuck::cast_slice(&[1u32, k, n, 0, 0, n, 0, 0]),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let mut outs = Vec::new();
        for (form, src, wres, xres) in [
            ("storage", &buf_src, wbuf.as_entire_binding(), xbuf.as_entire_binding()),
            ("texture", &tex_src, wgpu::BindingResource::TextureView(&view), xbuf.as_entire_binding()),
            ("texture+x", &tex2_src, wgpu::BindingResource::TextureView(&view), wgpu::BindingResource::TextureView(&xview)),
            ("storage", &buf_src, wbuf.as_entire_binding(), xbuf.as_entire_binding()),
            ("texture", &tex_src, wgpu::BindingResource::TextureView(&view), xbuf.as_entire_binding()),
            ("texture+x", &tex2_src, wgpu::BindingResource::TextureView(&view), wgpu::BindingResource::TextureView(&xview)),
        ] {
            let out = dev.create_buffer(&wgpu::BufferDescriptor { label: None, size: n as u64 * 4, usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC, mapped_at_creation: false });
            let m = unsafe {
                dev.create_shader_module_trusted(
                    wgpu::ShaderModuleDescriptor { label: None, source: wgpu::ShaderSource::Wgsl(src.as_str().into()) },
                    wgpu::ShaderRuntimeChecks::unchecked(),
                )
            };
            let p = dev.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: None, layout: None, module: &m, entry_point: Some("moa_linear_words"),
                compilation_options: Default::default(), cache: None,
            });
            let bg = dev.create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &p.get_bind_group_layout(0),
                entries: &[
                    wgpu::BindGroupEntry { binding: 0, resource: pbuf.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 1, resource: xres },
                    wgpu::BindGroupEntry { binding: 2, resource: wres },
                    wgpu::BindGroupEntry { binding: 3, resource: res.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 4, resource: out.as_entire_binding() },
                ],
            });
            let mut times = Vec::new();
            for _ in 0..8 {
                let mut e = dev.create_command_encoder(&Default::default());
                {
                    let mut pass = e.begin_compute_pass(&Default::default());
                    pass.set_pipeline(&p);
                    pass.set_bind_group(0, &bg, &[]);
                    for _ in 0..10 {
                        pass.dispatch_workgroups(n.div_ceil(256), 1, 1);
                    }
                }
                let t = Instant::now();
                q.submit([e.finish()]);
                dev.poll(wgpu::PollType::Wait { submission_index: None, timeout: None }).unwrap();
                times.push(t.elapsed().as_secs_f64() / 10.0);
            }
            let mut t = times[1..].to_vec();
            t.sort_by(f64::total_cmp);
            let med = t[t.len() / 2];
            println!("{name} {n}x{k} {form}: {:.3} ms a dispatch, {:.2} GB/s of weights", med * 1e3, (n * k * 2) as f64 / med / 1e9);
            let st = dev.create_buffer(&wgpu::BufferDescriptor { label: None, size: n as u64 * 4, usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST, mapped_at_creation: false });
            let mut e = dev.create_command_encoder(&Default::default());
            e.copy_buffer_to_buffer(&out, 0, &st, 0, n as u64 * 4);
            q.submit([e.finish()]);
            st.slice(..).map_async(wgpu::MapMode::Read, |_| {});
            dev.poll(wgpu::PollType::Wait { submission_index: None, timeout: None }).unwrap();
            outs.push(bytemuck::cast_slice::<u8, f32>(&st.slice(..).get_mapped_range().unwrap()).to_vec());
        }
        assert!(outs.iter().all(|o| o == &outs[0]), "{name}: the forms disagree");
    }
}
