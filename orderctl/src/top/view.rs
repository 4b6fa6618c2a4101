//! Draws the console: a table of the services, PlaceOrder and orders per status, and the
//! focused service's detail (events by type, lag per partition, or its dead letters) with a
//! minute of history. Fits 80×24.

use super::model::{Model, ServiceView};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Sparkline, Table};

/// What the operator chose to look at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ui {
    /// The focused service (index into the model's services).
    pub focus: usize,
    /// The focused service's dead letters instead of its events and lag.
    pub dead_letters: bool,
}

fn number(value: f64) -> String {
    let value = value + 0.0; // an empty sum is -0
    if value >= 10_000.0 { format!("{:.0}k", value / 1000.0) } else { format!("{value:.0}") }
}

fn health_style(view: &ServiceView) -> Style {
    match (view.up, view.health.as_str()) {
        (true, "SERVING") => Style::default().fg(Color::Green),
        (false, _) => Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
        _ => Style::default().fg(Color::Yellow),
    }
}

pub fn render(frame: &mut Frame, model: &Model, ui: &Ui, clock: &str) {
    let [title, table, place, statuses, detail] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(model.services.len() as u16 + 3),
        Constraint::Length(3),
        Constraint::Length(1),
        Constraint::Min(6),
    ])
    .areas(frame.area());
    frame.render_widget(
        Paragraph::new(format!("orderflow top  {clock}  q quit · ↑↓/1-4 focus · d dead letters")),
        title,
    );
    frame.render_widget(services(model, ui), table);
    render_place(frame, model, place);
    let by_status: Vec<Span> = model
        .orders_by_status
        .iter()
        .filter(|(_, n)| **n > 0.0)
        .map(|(status, n)| Span::raw(format!("{status} {}  ", number(*n))))
        .collect();
    let by_status = if by_status.is_empty() { vec![Span::raw("none open")] } else { by_status };
    frame.render_widget(Paragraph::new(Line::from([vec![Span::raw("open orders: ")], by_status].concat())), statuses);
    if let Some(view) = model.services.get(ui.focus) {
        render_detail(frame, view, ui, detail);
    }
}

fn services<'a>(model: &'a Model, ui: &Ui) -> Table<'a> {
    let header = Row::new(["service", "health", "in/s", "out/s", "lag", "outbox", "oldest", "DLQ"])
        .style(Style::default().add_modifier(Modifier::BOLD));
    let rows = model.services.iter().enumerate().map(|(i, v)| {
        let health = if v.up { v.health.clone() } else { format!("DOWN {}", v.health) };
        let row = Row::new([
            Cell::from(v.name.clone()),
            Cell::from(health).style(health_style(v)),
            Cell::from(number(v.consumed_total())),
            Cell::from(number(v.published_total())),
            Cell::from(number(v.lag_total())),
            Cell::from(number(v.outbox_depth)),
            Cell::from(format!("{:.1}s", v.outbox_oldest_s)),
            Cell::from(number(v.dead_letters)).style(if v.dead_letters > 0.0 {
                Style::default().fg(Color::Red)
            } else {
                Style::default()
            }),
        ]);
        if i == ui.focus { row.style(Style::default().add_modifier(Modifier::REVERSED)) } else { row }
    });
    let widths = [
        Constraint::Length(20),
        Constraint::Length(16),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(4),
    ];
    Table::new(rows, widths).header(header).block(Block::default().borders(Borders::ALL).title("services"))
}

fn render_place(frame: &mut Frame, model: &Model, area: Rect) {
    let p99 = model.place_p99_ms.map_or("-".to_owned(), |ms| format!("{ms:.1} ms"));
    let title = format!("PlaceOrder {:.1}/s  p99 {p99}", model.place_per_s);
    let history: Vec<u64> = model.place_history.iter().copied().collect();
    frame.render_widget(
        Sparkline::default().block(Block::default().borders(Borders::ALL).title(title)).data(&history),
        area,
    );
}

fn render_detail(frame: &mut Frame, view: &ServiceView, ui: &Ui, area: Rect) {
    let [lists, history] = Layout::vertical([Constraint::Min(3), Constraint::Length(3)]).areas(area);
    if ui.dead_letters {
        let text = if view.dead_letters > 0.0 {
            vec![
                Line::from(format!(
                    "{} dead letter(s) in {}'s dead-letter topic.",
                    number(view.dead_letters),
                    view.name
                )),
                Line::from(format!("  orderctl dlq list --service {}", view.name)),
                Line::from("  orderctl dlq redrive|discard ...   (the order's later events wait behind it)"),
            ]
        } else {
            vec![Line::from(format!("{} holds no dead letters.", view.name))]
        };
        let block = Block::default().borders(Borders::ALL).title(format!("{}: dead letters (d: back)", view.name));
        frame.render_widget(Paragraph::new(text).block(block), lists);
    } else {
        let [events, lag] = Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(lists);
        let lines = |rates: &std::collections::BTreeMap<String, f64>, arrow: &str| {
            rates
                .iter()
                .filter(|(_, r)| **r > 0.0)
                .map(|(t, r)| Line::from(format!("{arrow} {t:<18} {r:>7.1}/s")))
                .collect::<Vec<_>>()
        };
        let flow = [lines(&view.consumed_per_s, "in "), lines(&view.published_per_s, "out")].concat();
        let block = Block::default().borders(Borders::ALL).title(format!("{}: events", view.name));
        frame.render_widget(Paragraph::new(flow).block(block), events);
        let partitions: Vec<Line> =
            view.lag.iter().map(|((topic, p), lag)| Line::from(format!("{topic}[{p}] {}", number(*lag)))).collect();
        frame.render_widget(Paragraph::new(partitions).block(Block::default().borders(Borders::ALL).title("lag")), lag);
    }
    let data: Vec<u64> = view.history.iter().copied().collect();
    let title = format!("{}: events in/s, last minute", view.name);
    frame.render_widget(
        Sparkline::default().block(Block::default().borders(Borders::ALL).title(title)).data(&data),
        history,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::top::scrape::parse;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn text(terminal: &Terminal<TestBackend>) -> String {
        let buffer = terminal.backend().buffer();
        let width = buffer.area.width as usize;
        let symbols: Vec<&str> = buffer.content.iter().map(|c| c.symbol()).collect();
        symbols.chunks(width).map(|row| row.concat()).collect::<Vec<_>>().join("\n")
    }

    fn model() -> Model {
        let mut model = Model::new(&["order-service", "inventory-service"]);
        let scrape = |consumed: u32, dead: u32| {
            parse(&format!(
                "orderflow_events_consumed_total{{event_type=\"StockReserved\",outcome=\"applied\"}} {consumed}\n\
                 orderflow_consumer_lag{{topic=\"orderflow.inventory.v1\",partition=\"0\"}} 3\n\
                 orderflow_dead_letters {dead}\norderflow_orders{{status=\"SHIPPED\"}} 42\n"
            ))
        };
        model.update(vec![("SERVING".into(), Some(scrape(0, 0))), ("SERVING".into(), Some(scrape(0, 0)))], 1.0);
        model.update(vec![("SERVING".into(), Some(scrape(120, 0))), ("unreachable".into(), None)], 1.0);
        model
    }

    #[test]
    fn an_80_by_24_frame_shows_every_service_its_health_and_the_focused_detail() {
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
        terminal.draw(|f| render(f, &model(), &Ui::default(), "12:00:00")).unwrap();
        let screen = text(&terminal);
        assert!(screen.contains("order-service") && screen.contains("SERVING"), "{screen}");
        assert!(screen.contains("DOWN unreachable"), "a service gone shows down:\n{screen}");
        assert!(screen.contains("StockReserved") && screen.contains("120.0/s"), "{screen}");
        assert!(screen.contains("orderflow.inventory.v1[0] 3"), "{screen}");
        assert!(screen.contains("open orders: SHIPPED 42"), "{screen}");
        assert!(screen.contains("PlaceOrder 0.0/s"), "{screen}");
        assert!(!screen.contains("-0"), "no negative zero:\n{screen}");
    }

    #[test]
    fn the_dead_letter_view_says_how_to_answer_them() {
        let mut model = model();
        model.services[0].dead_letters = 2.0;
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
        terminal.draw(|f| render(f, &model, &Ui { focus: 0, dead_letters: true }, "12:00:00")).unwrap();
        let screen = text(&terminal);
        assert!(screen.contains("2 dead letter(s)") && screen.contains("orderctl dlq list"), "{screen}");
    }
}
